/* Scheduling and delivery semantics of SPEC sections 3-4, end to end: the
 * real daemon, plugins and HTTP against a receiver on 127.0.0.1, on the
 * virtual clock. Each test names the rule it holds the engine to. */
#include "scenario.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *const three[] = {"v1", "v2", "v3", NULL};

static mtr_time at_of(json_t *attempt)
{
    return iso(json_string_value(json_object_get(attempt, "at")));
}

static json_t *attempts_of(json_t *delivery)
{
    return json_object_get(delivery, "attempts");
}

static size_t count_state(json_t *deliveries, const char *state)
{
    size_t n = 0, i;
    json_t *d;
    json_array_foreach(deliveries, i, d) n +=
        strcmp(json_string_value(json_object_get(d, "state")), state) == 0;
    return n;
}

static size_t count_tick(json_t *deliveries, const char *tick)
{
    size_t n = 0, i;
    json_t *d;
    json_array_foreach(deliveries, i, d) n +=
        strcmp(json_string_value(json_object_get(d, "tick")), tick) == 0;
    return n;
}

/* The state and reason column of `webhook list --json` for fleet. */
/* r's webhook-signature is v1,base64(HMAC-SHA256(key, "id.timestamp.body")),
 * computed here independently from the whsec_ secret. */
static void expect_standard_signature(const struct received *r, const char *secret)
{
    cr_assert_not_null(r->webhook_signature);
    unsigned char key[64], mac[crypto_auth_hmacsha256_BYTES];
    size_t key_len;
    cr_assert_eq(sodium_base642bin(key, sizeof key, secret + 6, strlen(secret + 6), NULL, &key_len,
                                   NULL, sodium_base64_VARIANT_ORIGINAL),
                 0);
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, key_len);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s.%s.", r->webhook_id, r->webhook_timestamp);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)prefix, strlen(prefix));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)r->body, r->len);
    crypto_auth_hmacsha256_final(&st, mac);
    char want[128] = "v1,";
    sodium_bin2base64(want + 3, sizeof want - 3, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    cr_expect_str_eq(r->webhook_signature, want);
}

/* `run` on the virtual clock from..until, in the background: its pid. */
static pid_t spawn_run(struct scenario *s, const char *from, const char *until)
{
    const char *argv[] = {MTR_BIN,   "run", "--clock",  "virtual", "--start", from,
                          "--until", until, "--config", s->config, NULL};
    pid_t pid;
    extern char **environ;
    cr_assert_eq(posix_spawn(&pid, MTR_BIN, NULL, NULL, (char **)argv, environ), 0);
    return pid;
}

static void kill_9(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the daemon was killed");
}

static void webhook_state(struct scenario *s, char *state, size_t len, char *reason, size_t rlen)
{
    struct run_result r = sc_run(s, "webhook", "list", "--json", NULL);
    json_error_t je;
    json_t *v = json_loads(r.out, 0, &je);
    cr_assert_not_null(v, "%s", r.err);
    json_t *w = json_array_get(v, 0);
    snprintf(state, len, "%s", json_string_value(json_object_get(w, "state")));
    const char *why = json_string_value(json_object_get(w, "disabledReason"));
    snprintf(reason, rlen, "%s", why ? why : "");
    json_decref(v);
    run_result_free(&r);
}

Test(delivery, first_tick_is_the_one_after_the_subscription, .timeout = 60)
{
    /* SPEC 3: subscribed at 15:45 -> 16:00, 17:00, 18:00; spread 1-5 min, stable */
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", three);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T18:20:00Z");
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 9, "3 vehicles x 3 ticks");
    cr_expect_eq(count_tick(d, "2030-03-01T16:00:00Z"), 3);
    cr_expect_eq(count_tick(d, "2030-03-01T17:00:00Z"), 3);
    cr_expect_eq(count_tick(d, "2030-03-01T18:00:00Z"), 3);
    cr_expect_eq(count_state(d, "delivered"), 9);
    cr_expect_eq(sc_payloads(&s), 9);
    size_t i;
    json_t *x;
    mtr_time offsets[9];
    json_array_foreach(d, i, x)
    {
        mtr_time tick = iso(json_string_value(json_object_get(x, "tick")));
        mtr_time sent = at_of(json_array_get(attempts_of(x), 0));
        cr_expect(sent >= tick + 60 && sent <= tick + 300, "sent %lld s after the tick",
                  (long long)(sent - tick));
        offsets[i] = sent - tick;
    }
    /* deliveries are listed by tick; the same vehicle keeps its offset */
    mtr_time first[3] = {offsets[0], offsets[1], offsets[2]};
    for (size_t k = 3; k < 9; k++) {
        int same = 0;
        for (int j = 0; j < 3; j++)
            same |= offsets[k] == first[j];
        cr_expect(same, "offset %lld is not one of the first tick's", (long long)offsets[k]);
    }
    for (size_t k = 0; k < sc_payloads(&s); k++) {
        struct received r;
        receiver_get_payload(&s.r, k, &r);
        cr_expect(r.signature_ok, "SC-Signature of payload %zu", k);
        received_free(&r);
    }
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, a_subscription_takes_part_in_ticks_strictly_after_it, .timeout = 60)
{
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T16:00:00Z", one); /* exactly on a tick */
    sc_virtual(&s, "2030-03-01T16:00:00Z", "2030-03-01T17:30:00Z");
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "tick")),
                     "2030-03-01T17:00:00Z");
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, five_retries_in_ten_minutes_then_disabled, .timeout = 90)
{
    /* SPEC 4 and 7: 1 + 5 attempts at +30s, +1m30, +3m30, +6m30 (+-10%), +10m; then the
     * webhook is disabled, its payload stays failed and later ticks are missed */
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, NULL);
    receiver_default(&s.r, (struct receiver_rule){.status = 500, .retry_after = -1});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T18:30:00Z");
    json_t *d = sc_deliveries(&s);
    cr_assert_eq(json_array_size(d), 1, "only the 16:00 tick became a delivery");
    json_t *a = attempts_of(json_array_get(d, 0));
    cr_assert_eq(json_array_size(a), 6, "1 + 5 attempts");
    mtr_time t0 = at_of(json_array_get(a, 0));
    static const int want[] = {0, 30, 90, 210, 390, 600};
    for (size_t k = 1; k < 6; k++) {
        mtr_time off = at_of(json_array_get(a, k)) - t0;
        int gap = want[k] - want[k - 1];
        cr_expect(off >= want[k] - gap / 10 - 1 && off <= want[k] + gap / 10 + 1,
                  "retry %zu at +%llds, want +%ds +-10%%", k, (long long)off, want[k]);
        cr_expect_eq(json_integer_value(json_object_get(json_array_get(a, k), "httpStatus")), 500);
    }
    cr_expect_eq(at_of(json_array_get(a, 5)) - t0, 600, "the last retry closes the window");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "state")), "failed");
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "disabled");
    cr_expect_str_eq(reason, "retries-exhausted");
    cr_expect_eq(sc_payloads(&s), 6, "nothing sent after the webhook was disabled");
    struct run_result r = sc_run(&s, "deliveries", NULL);
    cr_expect(strstr(r.out, "missed 2") != NULL, "17:00 and 18:00 recorded as missed: %s", r.out);
    run_result_free(&r);
    json_decref(d);

    /* enable + replay resends the stored payload: same delivery id, same bytes */
    struct received first;
    receiver_get_payload(&s.r, 0, &first);
    receiver_default(&s.r, (struct receiver_rule){.status = 200, .retry_after = -1});
    r = sc_run(&s, "replay", "--webhook", "fleet", NULL);
    cr_expect_eq(r.status, 2, "replay refuses a disabled webhook: %s", r.err);
    run_result_free(&r);
    sc_ok(&s, "webhook", "enable", "fleet", "--now", "2030-03-01T18:30:00Z", NULL);
    sc_ok(&s, "replay", "--webhook", "fleet", "--now", "2030-03-01T18:30:00Z", NULL);
    sc_virtual(&s, "2030-03-01T18:30:00Z", "2030-03-01T18:45:00Z");
    cr_assert_eq(sc_payloads(&s), 7);
    struct received again;
    receiver_get_payload(&s.r, 6, &again);
    cr_expect_str_eq(again.delivery_id, first.delivery_id);
    cr_expect_eq(again.len, first.len);
    cr_expect(memcmp(again.body, first.body, first.len) == 0, "the same bytes");
    cr_expect(again.signature_ok);
    d = sc_deliveries(&s);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "state")),
                     "delivered");
    cr_expect_eq(json_array_size(attempts_of(json_array_get(d, 0))), 7, "attempts keep counting");
    json_decref(d);
    received_free(&first);
    received_free(&again);
    scenario_stop(&s);
}

/* The attempts of the only delivery of a run where the receiver always
 * answers 500, as seconds after the first; the webhook ends disabled. */
static size_t failing_attempts(const char *webhook_extra, mtr_time *off, size_t max)
{
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, &(struct scenario_opts){.webhook_extra = webhook_extra});
    receiver_default(&s.r, (struct receiver_rule){.status = 500, .retry_after = -1});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:40:00Z");
    json_t *d = sc_deliveries(&s);
    cr_assert_eq(json_array_size(d), 1, "one delivery (the 16:00 tick)");
    json_t *a = attempts_of(json_array_get(d, 0));
    size_t n = json_array_size(a);
    for (size_t k = 0; k < n && k < max; k++)
        off[k] = at_of(json_array_get(a, k)) - at_of(json_array_get(a, 0));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "state")), "failed");
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "disabled");
    cr_expect_str_eq(reason, "retries-exhausted");
    json_decref(d);
    scenario_stop(&s);
    return n;
}

Test(delivery, a_webhooks_retry_schedule_replaces_the_default, .timeout = 60)
{
    mtr_time off[8];
    size_t n = failing_attempts("    delivery: {retry_schedule: [1m, 2m, 4m]}\n", off, 8);
    cr_assert_eq(n, 4, "1 + 3 attempts, not 1 + 5");
    cr_expect(off[1] == 60 && off[2] == 120 && off[3] == 240,
              "retries at +60 +120 +240 s exactly: +%lld +%lld +%lld", (long long)off[1],
              (long long)off[2], (long long)off[3]);
}

Test(delivery, a_webhooks_retries_override_the_pipelines_key_by_key, .timeout = 60)
{
    mtr_time off[8];
    /* retries from the webhook, the 10-minute window from the pipeline */
    size_t n = failing_attempts("    delivery: {retries: 2}\n", off, 8);
    cr_assert_eq(n, 3, "1 + 2 attempts");
    cr_expect_eq(off[2], 600, "the pipeline's window still closes at +10 min");
    n = failing_attempts("    delivery: {retries: 1, retry_window: 2m}\n", off, 8);
    cr_assert_eq(n, 2, "1 + 1 attempts");
    cr_expect_eq(off[1], 120, "the webhook's own window: the last retry at +2 min");
}

/* The scheduled deliveries of a `deliveries --json` answer (the event
 * stream's are in the ledger too); takes d. */
static json_t *scheduled_of(json_t *d)
{
    json_t *out = json_array(), *x;
    size_t i;
    json_array_foreach(d, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "kind")), "scheduled") == 0)
            json_array_append(out, x);
    }
    json_decref(d);
    return out;
}

/* The events file's lines by type: how many of each, and the last of type. */
static size_t events_of(const char *path, const char *type, json_t **last)
{
    char *text = read_file(path);
    size_t n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *v = json_loads(line, 0, &je);
        cr_assert_not_null(v, "an events line is JSON: %s", line);
        json_t *body = json_object_get(v, "body");
        if (strcmp(json_string_value(json_object_get(body, "type")), type) == 0) {
            n++;
            if (last) {
                json_decref(*last);
                *last = json_incref(body);
            }
        }
        json_decref(v);
    }
    free(text);
    return n;
}

/* A webhook with auto_recover whose receiver fails everything from 16:00 and
 * is disabled at 16:10 (retries exhausted); its probes at 16:11 and 16:15 are
 * refused. Then the receiver answers payloads with payload_status and
 * challenges right, and the daemon (restarted) runs on to 17:30. */
static void recover_scenario(struct scenario *s, int payload_status, const char *cadence,
                             const char *delivery, char events[512])
{
    static const char *const one[] = {"v1", NULL};
    char sink[600], *dir = make_tmpdir(), *path = path_join(dir, "events.jsonl");
    snprintf(events, 512, "%s", path); /* the events go to this file */
    snprintf(sink, sizeof sink, "}\n  - {name: events, plugin: file, path: \"%s\"", path);
    free(path);
    free(dir);
    struct scenario_opts o = {.webhook_extra = "    delivery: {auto_recover: true}\n",
                              .cadence = cadence,
                              .sink_extra = sink,
                              .extra = "events: {sinks: [events]}\n",
                              .delivery = delivery ? delivery : "{spread: [0s, 0s]}"};
    scenario_start(s, &o);
    sc_setup(s, "2030-03-01T15:45:00Z", one);
    size_t verifies = receiver_count_event(&s->r, "verify");
    receiver_default(&s->r, (struct receiver_rule){.status = 500, .retry_after = -1});
    receiver_verify_rule(&s->r, (struct receiver_rule){.status = 503, .retry_after = -1});
    sc_virtual(s, "2030-03-01T15:45:00Z", "2030-03-01T16:35:00Z");
    char state[32], reason[64];
    webhook_state(s, state, sizeof state, reason, sizeof reason);
    cr_assert_str_eq(state, "disabled");
    cr_assert_str_eq(reason, "retries-exhausted");
    cr_expect_eq(receiver_count_event(&s->r, "verify") - verifies, 2,
                 "probed at 16:11 and 16:15, and not again before 16:40");
    receiver_default(&s->r, (struct receiver_rule){.status = payload_status, .retry_after = -1});
    receiver_verify_rule(&s->r, (struct receiver_rule){.status = 200, .retry_after = -1});
    sc_virtual(s, "2030-03-01T16:35:00Z", "2030-03-01T17:30:00Z");
}

Test(delivery, auto_recover_re_enables_a_receiver_that_came_back, .timeout = 90)
{
    struct scenario s;
    char events[512];
    recover_scenario(&s, 200, NULL, NULL, events);
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "active", "re-enabled without anyone");
    json_t *recovered = NULL;
    cr_expect_eq(events_of(events, "webhook.recovered", &recovered), 1, "said once");
    cr_expect_eq(
        json_integer_value(json_object_get(json_object_get(recovered, "data"), "replayed")), 1,
        "with what it replayed");
    json_decref(recovered);
    json_t *d = scheduled_of(sc_deliveries(&s));
    cr_assert_eq(json_array_size(d), 2, "the 16:00 payload and the 17:00 one");
    json_t *old = json_array_get(d, 0), *next = json_array_get(d, 1);
    cr_expect_str_eq(json_string_value(json_object_get(old, "state")), "delivered",
                     "catch_up latest: the payload it missed was replayed");
    cr_expect_eq(json_array_size(attempts_of(old)), 7, "6 attempts before, 1 after");
    cr_expect_str_eq(json_string_value(json_object_get(next, "state")), "delivered");
    struct received first, last;
    receiver_get_payload(&s.r, 0, &first);
    receiver_get_payload(&s.r, 6, &last);
    cr_expect_str_eq(last.delivery_id, first.delivery_id, "the same delivery id, replayed");
    cr_expect(last.len == first.len && memcmp(last.body, first.body, first.len) == 0,
              "the same bytes");
    received_free(&first);
    received_free(&last);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, a_recovered_webhook_on_probation_is_disabled_by_one_failure, .timeout = 90)
{
    struct scenario s;
    char events[512];
    recover_scenario(&s, 500, NULL, NULL, events);
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "disabled");
    cr_expect_str_eq(reason, "probation");
    json_t *last = NULL;
    cr_expect_eq(events_of(events, "webhook.disabled", &last), 2, "retries, then probation");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(last, "data"), "reason")),
                     "probation");
    json_decref(last);
    cr_expect_eq(events_of(events, "webhook.recovered", NULL), 1);
    json_t *d = scheduled_of(sc_deliveries(&s));
    cr_assert_eq(json_array_size(d), 1, "nothing after it was disabled again");
    cr_expect_eq(json_array_size(attempts_of(json_array_get(d, 0))), 7,
                 "the replay failed once, and that was all: %zu",
                 json_array_size(attempts_of(json_array_get(d, 0))));
    json_decref(d);
    scenario_stop(&s);
}

/* Ticks at 16:00, 16:04 and 16:08: 16:00's retries run out at 16:10, when
 * 16:04's and 16:08's deliveries fail with it; recovered at 16:35, the three failed ticks
 * are replayed as catch_up says. Returns how many of them were delivered. */
static size_t caught_up(const char *delivery)
{
    struct scenario s;
    char events[512];
    recover_scenario(&s, 200, "{policy: cron, expr: \"0,4,8 16 * * *\"}", delivery, events);
    json_t *d = scheduled_of(sc_deliveries(&s));
    size_t early = 0, delivered = 0;
    for (size_t i = 0; i < json_array_size(d); i++) {
        json_t *x = json_array_get(d, i);
        if (iso(json_string_value(json_object_get(x, "tick"))) > iso("2030-03-01T16:08:00Z"))
            continue;
        early++;
        delivered += strcmp(json_string_value(json_object_get(x, "state")), "delivered") == 0;
    }
    cr_expect_eq(early, 3, "16:00, 16:04 and 16:08 became deliveries");
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "active");
    json_decref(d);
    scenario_stop(&s);
    return delivered;
}

Test(delivery, auto_recover_replays_what_was_missed_as_catch_up_says, .timeout = 120)
{
    cr_expect_eq(caught_up("{spread: [0s, 0s], catch_up: skip}"), 0, "skip: none replayed");
    cr_expect_eq(caught_up("{spread: [0s, 0s], catch_up: latest}"), 1, "latest: 16:08's");
    cr_expect_eq(caught_up("{spread: [0s, 0s], catch_up: all}"), 3, "all: every one");
}

Test(delivery, events_report_each_happening_once_through_the_ledger, .timeout = 90)
{
    static const char *const one[] = {"v1", NULL};
    char *dir = make_tmpdir(), *events = path_join(dir, "events.jsonl"), sink[512];
    snprintf(sink, sizeof sink, "}\n  - {name: events, plugin: file, path: \"%s\"", events);
    struct scenario s;
    struct scenario_opts o = {.sink_extra = sink,
                              .delivery = "{spread: [0s, 0s]}",
                              .extra = "events: {sinks: [events]}\n"};
    scenario_start(&s, &o);
    receiver_default(&s.r, (struct receiver_rule){.status = 500, .retry_after = -1});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *failed = NULL, *disabled = NULL, *enabled = NULL;
    cr_expect_eq(events_of(events, "delivery.failed", &failed), 1, "the failed payload, once");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(failed, "data"), "attempts")),
                 6);
    cr_expect_eq(events_of(events, "webhook.disabled", &disabled), 1, "the disable, once");
    json_t *data = json_object_get(disabled, "data");
    cr_expect_str_eq(json_string_value(json_object_get(data, "reason")), "retries-exhausted");
    cr_expect_str_eq(json_string_value(json_object_get(data, "webhookName")), "fleet");
    cr_expect_str_eq(json_string_value(json_object_get(disabled, "timestamp")),
                     "2030-03-01T16:10:00Z");
    /* an operator enables it from the command line; the running daemon sends the event */
    sc_ok(&s, "webhook", "enable", "fleet", "--now", "2030-03-01T16:30:00Z", NULL);
    sc_virtual(&s, "2030-03-01T16:30:00Z", "2030-03-01T16:40:00Z");
    sc_virtual(&s, "2030-03-01T16:40:00Z", "2030-03-01T16:50:00Z"); /* and a restart */
    cr_expect_eq(events_of(events, "webhook.enabled", &enabled), 1);
    cr_expect_eq(events_of(events, "webhook.disabled", NULL), 1, "restarts emit nothing again");
    cr_expect_eq(events_of(events, "delivery.failed", NULL), 1);
    /* the stream is not the webhook's: its listing and its payloads do not include it */
    json_t *d = sc_deliveries(&s);
    size_t kinds[3] = {0};
    for (size_t i = 0; i < json_array_size(d); i++) {
        const char *k = json_string_value(json_object_get(json_array_get(d, i), "kind"));
        kinds[strcmp(k, "scheduled") == 0 ? 0 : strcmp(k, "event") == 0 ? 1 : 2]++;
    }
    cr_expect_eq(kinds[1], 3, "three events in the ledger, each once");
    cr_expect_eq(sc_payloads(&s), 6);
    cr_expect_eq(receiver_count(&s.r), 1 + 6,
                 "the callback got its challenge and payloads, none of the events");
    json_decref(d);
    json_decref(failed);
    json_decref(disabled);
    json_decref(enabled);
    scenario_stop(&s);
    free(events);
    free(dir);
}

Test(delivery, events_go_to_an_operators_url_signed_the_standard_webhooks_way, .timeout = 60)
{
    static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    static const char *const one[] = {"v1", NULL};
    struct receiver ops;
    cr_assert_eq(receiver_start(&ops, 0, SCENARIO_TOKEN), 0);
    char sink[512];
    snprintf(sink, sizeof sink,
             "}\n  - {name: ops, plugin: http, url: \"http://127.0.0.1:%u/events\", "
             "allow_private_networks: true, standard_webhooks: true, "
             "standard_webhooks_secret: %s",
             ops.port, secret);
    struct scenario s;
    struct scenario_opts o = {
        .sink_extra = sink, .delivery = "{spread: [0s, 0s]}", .extra = "events: {sinks: [ops]}\n"};
    scenario_start(&s, &o);
    receiver_default(&s.r, (struct receiver_rule){.status = 500, .retry_after = -1});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    cr_assert_eq(receiver_count(&ops), 2, "delivery.failed and webhook.disabled, at the url");
    int failed = 0, disabled = 0;
    for (size_t k = 0; k < 2; k++) { /* in either order: the sink sends them at once */
        struct received r;
        cr_assert_eq(receiver_get(&ops, k, &r), 0);
        json_error_t je;
        json_t *v = json_loadb(r.body, r.len, 0, &je);
        const char *type = json_string_value(json_object_get(v, "type"));
        failed += type && strcmp(type, "delivery.failed") == 0;
        disabled += type && strcmp(type, "webhook.disabled") == 0;
        cr_expect(r.signature_ok, "SC-Signature, as every delivery");
        expect_standard_signature(&r, secret);
        json_decref(v);
        received_free(&r);
    }
    cr_expect(failed == 1 && disabled == 1, "one of each: %d %d", failed, disabled);
    scenario_stop(&s);
    receiver_stop(&ops);
}

/* kill -9 while an event is in flight: the ledger holds each event once, and
 * after the restart every one of them arrives (again with the same id). */
Test(delivery, events_are_emitted_once_across_a_kill_9, .timeout = 120)
{
    static const char *const one[] = {"v1", NULL};
    struct receiver ops;
    cr_assert_eq(receiver_start(&ops, 0, SCENARIO_TOKEN), 0);
    struct receiver_rule hang = {
        .mode = RECV_HANG, .status = 200, .retry_after = -1, .hang_ms = 3000};
    receiver_default(&ops, hang);
    char sink[512];
    snprintf(sink, sizeof sink,
             "}\n  - {name: ops, plugin: http, url: \"http://127.0.0.1:%u/events\", "
             "allow_private_networks: true",
             ops.port);
    struct scenario s;
    struct scenario_opts o = {
        .sink_extra = sink, .delivery = "{spread: [0s, 0s]}", .extra = "events: {sinks: [ops]}\n"};
    scenario_start(&s, &o);
    receiver_default(&s.r, (struct receiver_rule){.status = 500, .retry_after = -1});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    pid_t pid = spawn_run(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    for (int i = 0; i < 500 && receiver_count(&ops) < 1; i++) { /* polled, bounded: 10 s */
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_geq(receiver_count(&ops), 1, "an event was in flight before the kill");
    kill_9(pid);
    receiver_default(&ops, (struct receiver_rule){.status = 200, .retry_after = -1});
    sc_virtual(&s, "2030-03-01T16:11:00Z", "2030-03-01T16:40:00Z"); /* leases run out */
    json_t *d = sc_deliveries(&s);
    size_t events = 0, i;
    json_t *x;
    json_array_foreach(d, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "kind")), "event") != 0)
            continue;
        events++;
        cr_expect_str_eq(json_string_value(json_object_get(x, "state")), "delivered");
        const char *id = json_string_value(json_object_get(x, "id"));
        int seen = 0;
        for (size_t k = 0; k < receiver_count(&ops); k++) {
            struct received r;
            receiver_get(&ops, k, &r);
            seen |= r.delivery_id && strcmp(r.delivery_id, id) == 0;
            received_free(&r);
        }
        cr_expect(seen, "event %s never arrived", id);
    }
    cr_expect_eq(events, 2, "delivery.failed and webhook.disabled, each once in the ledger");
    json_decref(d);
    scenario_stop(&s);
    receiver_stop(&ops);
}

Test(delivery, gone_disables_at_once, .timeout = 60)
{
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, NULL);
    receiver_default(&s.r, (struct receiver_rule){.status = 410, .retry_after = -1});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T17:30:00Z");
    cr_expect_eq(sc_payloads(&s), 1, "one attempt, no retries");
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "disabled");
    cr_expect_str_eq(reason, "gone");
    scenario_stop(&s);
}

Test(delivery, retry_after_is_honoured, .timeout = 60)
{
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, NULL);
    struct receiver_rule busy = {.status = 429, .retry_after = 200};
    receiver_script(&s.r, &busy, 1);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *d = sc_deliveries(&s);
    json_t *a = attempts_of(json_array_get(d, 0));
    cr_assert_eq(json_array_size(a), 2);
    mtr_time gap = at_of(json_array_get(a, 1)) - at_of(json_array_get(a, 0));
    cr_expect_eq(gap, 200, "the retry waited Retry-After (200 s), not 30 s: %lld", (long long)gap);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "state")),
                     "delivered");
    json_decref(d);
    scenario_stop(&s);
}

/* ---- fresher data and order ----------------------------------------------------------------- */

/* v1's 16:00 payload fails at 16:00 and 16:30 (its next retry is due at 17:30);
 * everything after is answered 200. Returns the arrivals of that payload; the
 * event stream goes to the file named in events. */
static size_t arrivals_of_the_1600_payload(struct scenario *s, const char *delivery,
                                           char events[512])
{
    static const char *const one[] = {"v1", NULL};
    char extra[200], sink[600], *dir = make_tmpdir(), *path = path_join(dir, "events.jsonl");
    snprintf(extra, sizeof extra, "    delivery: %s\n", delivery);
    snprintf(events, 512, "%s", path);
    snprintf(sink, sizeof sink, "}\n  - {name: events, plugin: file, path: \"%s\"", path);
    free(path);
    free(dir);
    scenario_start(s, &(struct scenario_opts){.webhook_extra = extra,
                                              .sink_extra = sink,
                                              .extra = "events: {sinks: [events]}\n",
                                              .delivery = "{spread: [0s, 0s]}"});
    struct receiver_rule fail[2] = {{.status = 500, .retry_after = -1},
                                    {.status = 500, .retry_after = -1}};
    receiver_script(&s->r, fail, 2);
    sc_setup(s, "2030-03-01T15:45:00Z", one);
    sc_virtual(s, "2030-03-01T15:45:00Z", "2030-03-01T18:10:00Z");
    struct received first;
    receiver_get_payload(&s->r, 0, &first);
    size_t n = 0, total = sc_payloads(s);
    for (size_t i = 0; i < total; i++) {
        struct received x;
        receiver_get_payload(&s->r, i, &x);
        n += strcmp(x.delivery_id, first.delivery_id) == 0;
        received_free(&x);
    }
    received_free(&first);
    return n;
}

Test(delivery, supersede_records_older_retries_superseded_instead_of_sending_them, .timeout = 60)
{
    struct scenario s;
    char events[512];
    size_t n =
        arrivals_of_the_1600_payload(&s, "{supersede: true, retry_schedule: [30m, 90m]}", events);
    cr_expect_eq(n, 2, "16:00 and 16:30; not again at 17:30, after 17:00's was delivered");
    json_t *d = sc_deliveries(&s);
    json_t *old = NULL, *x;
    size_t i;
    json_array_foreach(d, i, x) if (strcmp(json_string_value(json_object_get(x, "tick")),
                                           "2030-03-01T16:00:00Z") == 0) old = x;
    cr_assert_not_null(old);
    cr_expect_str_eq(json_string_value(json_object_get(old, "state")), "failed");
    const char *why = json_string_value(json_object_get(old, "lastError"));
    cr_expect(why && strstr(why, "superseded"), "%s", why ? why : "(none)");
    cr_expect_eq(count_state(d, "delivered"), 2, "17:00 and 18:00");
    json_decref(d);
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "active", "superseding disables nothing");
    cr_expect_eq(events_of(events, "delivery.failed", NULL), 0, "nor says a delivery failed");
    scenario_stop(&s);
}

Test(delivery, without_supersede_an_older_retry_is_still_sent_late, .timeout = 60)
{
    struct scenario s;
    char events[512];
    size_t n = arrivals_of_the_1600_payload(&s, "{retry_schedule: [30m, 90m]}", events);
    cr_expect_eq(n, 3, "16:00, 16:30 and 17:30");
    scenario_stop(&s);
}

Test(delivery, ordered_holds_a_vehicles_tick_until_its_previous_one_is_settled, .timeout = 60)
{
    /* the same receiver as above: with ordered, 17:00's payload waits for 16:00's retry at
     * 17:30, and goes after it */
    struct scenario s;
    char events[512];
    size_t n =
        arrivals_of_the_1600_payload(&s, "{ordered: true, retry_schedule: [30m, 90m]}", events);
    cr_expect_eq(n, 3, "16:00, 16:30 and 17:30");
    cr_assert_eq(sc_payloads(&s), 5, "16:00's three, then 17:00's and 18:00's");
    struct received first, third, fourth;
    receiver_get_payload(&s.r, 0, &first);
    receiver_get_payload(&s.r, 2, &third);
    receiver_get_payload(&s.r, 3, &fourth);
    cr_expect_str_eq(third.delivery_id, first.delivery_id, "16:00's retry went first");
    cr_expect_str_neq(fourth.delivery_id, first.delivery_id, "then 17:00's");
    received_free(&first);
    received_free(&third);
    received_free(&fourth);
    json_t *d = sc_deliveries(&s);
    size_t i;
    json_t *x;
    json_array_foreach(d, i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "tick")), "2030-03-01T17:00:00Z") != 0)
            continue;
        json_t *a = attempts_of(x);
        cr_expect_eq(json_array_size(a), 1, "waiting was not an attempt");
        cr_expect(at_of(json_array_get(a, 0)) >= iso("2030-03-01T17:30:00Z"),
                  "17:00's payload was sent after 16:00's retry at 17:30");
    }
    json_decref(d);
    scenario_stop(&s);
}

/* ---- receiver protection -------------------------------------------------------------------- */

static const char *const six_vehicles[] = {"v1", "v2", "v3", "v4", "v5", "v6", NULL};

/* Each delivery of d has exactly one attempt, and it was answered 200. */
static void expect_one_attempt_each(json_t *d)
{
    size_t i;
    json_t *x;
    json_array_foreach(d, i, x)
    {
        cr_expect_str_eq(json_string_value(json_object_get(x, "state")), "delivered");
        json_t *a = attempts_of(x);
        cr_expect_eq(json_array_size(a), 1, "a deferral is not an attempt: %zu",
                     json_array_size(a));
        cr_expect_eq(json_integer_value(json_object_get(json_array_get(a, 0), "httpStatus")), 200);
    }
}

Test(delivery, a_503_with_retry_after_slows_its_receiver_and_does_not_disable_it, .timeout = 90)
{
    /* the receiver answers 503 with Retry-After: 600 for 40 minutes: its origin pauses 10
     * minutes at a time (no retry schedule, no disable), then everything is delivered once */
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.sink_extra = ", pause_on_retry_after: true",
                                               .webhook_extra = "    vehicles_per_payload: 1\n",
                                               .delivery = "{spread: [0s, 0s]}"});
    sc_setup(&s, "2030-03-01T15:45:00Z", three);
    receiver_default(&s.r, (struct receiver_rule){.status = 503, .retry_after = 600});
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:40:00Z");
    size_t asked = sc_payloads(&s);
    /* the three go out together at 16:00; then one request every 10 minutes (16:10 ..
     * 16:40) tries the origin, and the others wait behind it */
    cr_expect_eq(asked, 7, "%zu requests in 40 minutes of 503s", asked);
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "active", "slowed, not disabled (%s)", reason);
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(count_state(d, "pending"), 3, "all three still pending");
    json_decref(d);
    receiver_default(&s.r, (struct receiver_rule){.status = 200, .retry_after = -1});
    sc_virtual(&s, "2030-03-01T16:40:00Z", "2030-03-01T17:05:00Z");
    d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 6, "16:00 and 17:00, three each");
    expect_one_attempt_each(d);
    json_decref(d);
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "active");
    scenario_stop(&s);
}

Test(delivery, without_pause_on_retry_after_a_503_is_a_failed_attempt, .timeout = 60)
{
    /* the default is Smartcar's: the same receiver disables the webhook */
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.webhook_extra = "    vehicles_per_payload: 1\n",
                                               .delivery = "{spread: [0s, 0s]}"});
    sc_setup(&s, "2030-03-01T15:45:00Z", three);
    receiver_default(&s.r, (struct receiver_rule){.status = 503, .retry_after = 600});
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:40:00Z");
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "disabled");
    cr_expect_str_eq(reason, "retries-exhausted");
    scenario_stop(&s);
}

Test(delivery, a_receiver_that_asks_to_wait_forever_is_given_a_day, .timeout = 90)
{
    /* deferrals stop a day after the delivery was made: then its retries count again */
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, &(struct scenario_opts){.sink_extra = ", pause_on_retry_after: true",
                                               .cadence = "{policy: daily, at: \"16:00\"}",
                                               .delivery = "{spread: [0s, 0s]}"});
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    receiver_default(&s.r, (struct receiver_rule){.status = 503, .retry_after = 7200});
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-02T15:50:00Z");
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "active", "still waiting within the day");
    sc_virtual(&s, "2030-03-02T15:50:00Z", "2030-03-02T17:30:00Z");
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "disabled", "a day of 503s is enough");
    cr_expect_str_eq(reason, "retries-exhausted");
    scenario_stop(&s);
}

Test(delivery, max_in_flight_caps_the_requests_open_at_once_to_an_origin, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, &(struct scenario_opts){.sink_extra = ", max_in_flight: 2",
                                               .webhook_extra = "    vehicles_per_payload: 1\n",
                                               .delivery = "{spread: [0s, 0s]}"});
    sc_setup(&s, "2030-03-01T15:45:00Z", six_vehicles);
    receiver_default(&s.r,
                     (struct receiver_rule){
                         .mode = RECV_HANG, .status = 200, .retry_after = -1, .hang_ms = 150});
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:05:00Z");
    cr_expect_eq(receiver_max_active(&s.r), 2, "at most 2 open at once (6 without the cap)");
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 6);
    expect_one_attempt_each(d);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, max_rate_spreads_an_origins_requests_over_seconds, .timeout = 60)
{
    /* webhook-timestamp is the daemon's (virtual) second each request was started in */
    struct scenario s;
    scenario_start(&s,
                   &(struct scenario_opts){.sink_extra = ", max_rate: 2, standard_webhooks: true, "
                                                         "standard_webhooks_secret: "
                                                         "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                           .webhook_extra = "    vehicles_per_payload: 1\n",
                                           .delivery = "{spread: [0s, 0s]}"});
    sc_setup(&s, "2030-03-01T15:45:00Z", six_vehicles);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:05:00Z");
    cr_assert_eq(sc_payloads(&s), 6, "each sent once");
    long long first = 0, last = 0;
    int per[16] = {0};
    for (size_t i = 0; i < 6; i++) {
        struct received x;
        receiver_get_payload(&s.r, i, &x);
        long long ts = atoll(x.webhook_timestamp ? x.webhook_timestamp : "0");
        first = i == 0 || ts < first ? ts : first;
        last = ts > last ? ts : last;
        if (ts - iso("2030-03-01T16:00:00Z") >= 0 && ts - iso("2030-03-01T16:00:00Z") < 16)
            per[ts - iso("2030-03-01T16:00:00Z")]++;
        received_free(&x);
    }
    cr_expect_eq(first, iso("2030-03-01T16:00:00Z"));
    cr_expect_eq(last - first, 2, "2 a second: 16:00:00, :01, :02");
    for (int k = 0; k < 16; k++)
        cr_expect(per[k] <= 2, "%d requests in second %d", per[k], k);
    json_t *d = sc_deliveries(&s);
    expect_one_attempt_each(d);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, asleep_vehicles_are_fetched_again_in_later_slots, .timeout = 60)
{
    /* SPEC 3: a vehicle that cannot be fetched is tried in each following 15-minute
     * slot up to the next tick; what still fails is delivered with the error */
    struct scenario s;
    struct scenario_opts o = {.source_extra = ", asleep_vehicles: [sleepy, napper], asleep_for: "
                                              "16m"};
    static const char *const two[] = {"sleepy", NULL};
    scenario_start(&s, &o);
    sc_setup(&s, "2030-03-01T15:45:00Z", two);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:59:00Z");
    json_t *d = sc_deliveries(&s);
    cr_assert_eq(json_array_size(d), 1);
    mtr_time sent = at_of(json_array_get(attempts_of(json_array_get(d, 0)), 0));
    mtr_time tick = iso("2030-03-01T16:00:00Z");
    cr_expect(sent >= tick + 15 * 60 + 60 && sent <= tick + 15 * 60 + 300,
              "woke in the second slot: +%lld s", (long long)(sent - tick));
    struct received r;
    receiver_get_payload(&s.r, 0, &r);
    cr_expect(strstr(r.body, "\"code\":200") != NULL && strstr(r.body, "ASLEEP") == NULL, "%s",
              r.body);
    received_free(&r);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, a_vehicle_asleep_all_hour_is_delivered_with_its_error, .timeout = 60)
{
    struct scenario s;
    struct scenario_opts o = {.source_extra = ", asleep_vehicles: [sleepy]"};
    static const char *const one[] = {"sleepy", NULL};
    scenario_start(&s, &o);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:59:00Z");
    cr_assert_eq(sc_payloads(&s), 1);
    json_t *d = sc_deliveries(&s);
    mtr_time sent = at_of(json_array_get(attempts_of(json_array_get(d, 0)), 0));
    mtr_time tick = iso("2030-03-01T16:00:00Z");
    cr_expect(sent >= tick + 45 * 60, "tried at +0, +15, +30, +45 min: sent +%lld s",
              (long long)(sent - tick));
    struct received r;
    receiver_get_payload(&s.r, 0, &r);
    cr_expect(strstr(r.body, "\"code\":409") && strstr(r.body, "\"code\":\"ASLEEP\""), "%s",
              r.body);
    received_free(&r);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, malformed_source_data_becomes_an_error_element, .timeout = 60)
{
    struct scenario s;
    struct scenario_opts o = {.source_extra = ", malformed_vehicles: [broken]"};
    static const char *const two[] = {"broken", "fine", NULL};
    scenario_start(&s, &o);
    sc_setup(&s, "2030-03-01T15:45:00Z", two);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:59:00Z");
    cr_expect_eq(sc_payloads(&s), 2, "both vehicles delivered; nothing lost");
    int seen_error = 0;
    for (size_t i = 0; i < 2; i++) {
        struct received r;
        receiver_get_payload(&s.r, i, &r);
        if (strstr(r.body, "\"vehicleId\":\"broken\"")) {
            seen_error = 1;
            cr_expect(strstr(r.body, "\"type\":\"UPSTREAM\",\"code\":\"INVALID_DATA\"") != NULL,
                      "%s", r.body);
            cr_expect(strstr(r.body, "malformed JSON") != NULL, "%s", r.body);
        }
        received_free(&r);
    }
    cr_expect(seen_error);
    scenario_stop(&s);
}

Test(delivery, catch_up_latest_after_downtime, .timeout = 60)
{
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    /* down from 16:30 to 20:10: 17:00, 18:00, 19:00 are late; 20:00 is current */
    sc_virtual(&s, "2030-03-01T20:10:00Z", "2030-03-01T20:30:00Z");
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 3, "16:00, then 19:00 (latest) and 20:00");
    cr_expect_eq(count_tick(d, "2030-03-01T16:00:00Z"), 1);
    cr_expect_eq(count_tick(d, "2030-03-01T19:00:00Z"), 1);
    cr_expect_eq(count_tick(d, "2030-03-01T20:00:00Z"), 1);
    struct run_result r = sc_run(&s, "deliveries", NULL);
    cr_expect(strstr(r.out, "missed 2") != NULL, "17:00 and 18:00 recorded missed: %s", r.out);
    run_result_free(&r);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, catch_up_all_and_skip, .timeout = 60)
{
    static const char *const one[] = {"v1", NULL};
    const char *policies[] = {"{catch_up: all}", "{catch_up: skip}"};
    const size_t want[] = {5, 2}; /* 16, 17, 18, 19, 20 / 16, 20 */
    for (int p = 0; p < 2; p++) {
        struct scenario s;
        struct scenario_opts o = {.delivery = policies[p]};
        scenario_start(&s, &o);
        sc_setup(&s, "2030-03-01T15:45:00Z", one);
        sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
        sc_virtual(&s, "2030-03-01T20:10:00Z", "2030-03-01T20:30:00Z");
        json_t *d = sc_deliveries(&s);
        cr_expect_eq(json_array_size(d), want[p], "%s", policies[p]);
        json_decref(d);
        scenario_stop(&s);
    }
}

Test(delivery, unsubscribe_stops_deliveries, .timeout = 60)
{
    struct scenario s;
    static const char *const two[] = {"v1", "v2", NULL};
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", two);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    sc_ok(&s, "unsubscribe", "fleet", "v2", "--now", "2030-03-01T16:30:00Z", NULL);
    sc_virtual(&s, "2030-03-01T16:30:00Z", "2030-03-01T17:30:00Z");
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(count_tick(d, "2030-03-01T16:00:00Z"), 2);
    cr_expect_eq(count_tick(d, "2030-03-01T17:00:00Z"), 1, "only v1 at 17:00");
    json_decref(d);
    struct run_result r = sc_run(&s, "unsubscribe", "fleet", "v2", NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "vehicle v2 is not subscribed to fleet") != NULL, "%s", r.err);
    run_result_free(&r);
    scenario_stop(&s);
}

Test(delivery, an_unverified_webhook_gets_nothing, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_ok(&s, "subscribe", "fleet", "v1", "--now", "2030-03-01T15:45:00Z", NULL);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T18:30:00Z");
    cr_expect_eq(receiver_count(&s.r), 0);
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 0);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, a_wrong_challenge_answer_leaves_the_webhook_unverified, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    receiver_verify_rule(&s.r, (struct receiver_rule){
                                   .mode = RECV_WRONG_CHALLENGE, .status = 200, .retry_after = -1});
    struct run_result r = sc_run(&s, "webhook", "verify", "fleet", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "the challenge answer is wrong") != NULL, "%s", r.err);
    run_result_free(&r);
    char state[32], reason[64];
    webhook_state(&s, state, sizeof state, reason, sizeof reason);
    cr_expect_str_eq(state, "unverified");
    scenario_stop(&s);
}

Test(delivery, dropped_connections_are_retried_and_recorded, .timeout = 60)
{
    struct scenario s;
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, NULL);
    struct receiver_rule rules[] = {{.mode = RECV_DROP}, {.mode = RECV_DROP}};
    receiver_script(&s.r, rules, 2);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *d = sc_deliveries(&s);
    json_t *a = attempts_of(json_array_get(d, 0));
    cr_assert_eq(json_array_size(a), 3, "2 dropped + 1 delivered");
    const char *err = json_string_value(json_object_get(json_array_get(a, 0), "error"));
    cr_expect(err && strstr(err, "Empty reply") != NULL, "transport error recorded: %s",
              err ? err : "(null)");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "state")),
                     "delivered");
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, private_addresses_are_refused_unless_allowed, .timeout = 60)
{
    struct scenario s;
    struct scenario_opts o = {.deny_private = 1};
    scenario_start(&s, &o);
    struct run_result r = sc_run(&s, "webhook", "verify", "fleet", NULL);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "refused to connect to 127.0.0.1: a loopback address") != NULL, "%s",
              r.err);
    run_result_free(&r);
    cr_expect_eq(receiver_count(&s.r), 0, "nothing reached the receiver");
    scenario_stop(&s);
}

Test(delivery, large_payloads_are_split_by_vehicles, .timeout = 60)
{
    struct scenario s;
    struct scenario_opts o = {.sink_extra = ", max_body_bytes: 4KiB",
                              .webhook_extra = "    vehicles_per_payload: 10\n"};
    static const char *const ten[] = {"a0", "a1", "a2", "a3", "a4", "a5",
                                      "a6", "a7", "a8", "a9", NULL};
    scenario_start(&s, &o);
    sc_setup(&s, "2030-03-01T15:45:00Z", ten);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    size_t n = sc_payloads(&s), vehicles = 0;
    cr_expect_gt(n, 1, "split into several payloads");
    for (size_t i = 0; i < n; i++) {
        struct received r;
        receiver_get_payload(&s.r, i, &r);
        cr_expect_leq(r.len, 4096, "payload %zu is %zu bytes", i, r.len);
        cr_expect(r.signature_ok);
        vehicles += (size_t)r.vehicles;
        received_free(&r);
    }
    cr_expect_eq(vehicles, 10, "every vehicle once, none truncated");
    scenario_stop(&s);
}

Test(delivery, test_payload_has_mode_test, .timeout = 60)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_ok(&s, "webhook", "test", "fleet", NULL); /* allowed before verification */
    cr_assert_eq(sc_payloads(&s), 1);
    struct received r;
    receiver_get_payload(&s.r, 0, &r);
    cr_expect(strstr(r.body, "\"eventName\":\"scheduled\",\"mode\":\"test\"") != NULL, "%s",
              r.body);
    cr_expect(r.signature_ok);
    received_free(&r);
    scenario_stop(&s);
}

Test(delivery, recovery_after_kill_9, .timeout = 120)
{
    /* SPEC 3, 7: after kill -9 and a restart every due (webhook, vehicle, tick) is
     * delivered at least once, with the same delivery id */
    struct scenario s;
    static const char *const six[] = {"k1", "k2", "k3", "k4", "k5", "k6", NULL};
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", six);
    /* three payloads are answered; the other three hang, in flight, when the
     * test kills the daemon - so the tick is cut in the middle */
    struct receiver_rule rules[6] = {
        {.status = 200, .retry_after = -1},
        {.status = 200, .retry_after = -1},
        {.status = 200, .retry_after = -1},
        {.mode = RECV_HANG, .status = 200, .retry_after = -1, .hang_ms = 2000},
        {.mode = RECV_HANG, .status = 200, .retry_after = -1, .hang_ms = 2000},
        {.mode = RECV_HANG, .status = 200, .retry_after = -1, .hang_ms = 2000}};
    receiver_script(&s.r, rules, 6);
    pid_t pid = spawn_run(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    for (int i = 0; i < 500 && sc_payloads(&s) < 6; i++) { /* polled, bounded: 10 s */
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_eq(sc_payloads(&s), 6, "all six were sent before the kill");
    kill_9(pid);
    json_t *mid = sc_deliveries(&s);
    size_t before = count_state(mid, "delivered");
    json_decref(mid);
    cr_expect_leq(before, 3, "killed mid-tick: at most the three answered are recorded");
    receiver_default(&s.r, (struct receiver_rule){.status = 200, .retry_after = -1});
    /* restart; the dead node's leases (10 min) run out during this run */
    sc_virtual(&s, "2030-03-01T16:12:00Z", "2030-03-01T16:40:00Z");
    json_t *d = sc_deliveries(&s);
    cr_expect_eq(json_array_size(d), 6, "one delivery per vehicle of the 16:00 tick");
    cr_expect_eq(count_state(d, "delivered"), 6);
    /* every ledger delivery id reached the receiver, whichever run sent it */
    size_t i;
    json_t *x;
    json_array_foreach(d, i, x)
    {
        const char *id = json_string_value(json_object_get(x, "id"));
        int seen = 0;
        for (size_t k = 0; k < sc_payloads(&s); k++) {
            struct received r;
            receiver_get_payload(&s.r, k, &r);
            seen |= r.delivery_id && strcmp(r.delivery_id, id) == 0;
            received_free(&r);
        }
        cr_expect(seen, "delivery %s never arrived", id);
    }
    struct run_result r = sc_run(&s, "deliveries", NULL);
    cr_expect(strstr(r.out, "jobs: due 0, sent 6, missed 0") != NULL, "%s", r.out);
    run_result_free(&r);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, retention_prunes_payloads_then_rows, .timeout = 60)
{
    /* SPEC 7: payload bytes go after retention.delivered, rows after retention.history */
    struct scenario s;
    struct scenario_opts o = {.delivery = "{spread: [0s, 0s]}\n"
                                          "retention: {delivered: 2h, failed: 2h, history: 3h}"};
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, &o);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T20:30:00Z");
    /* the last prune ran at 20:00: rows touched before 17:00 are gone, payloads
     * delivered before 18:00 are dropped */
    json_t *d = sc_deliveries(&s);
    cr_assert_eq(json_array_size(d), 4, "16:00 is gone; 17:00 to 20:00 remain");
    static const struct {
        const char *tick;
        int has_bytes;
    } want[] = {{"2030-03-01T17:00:00Z", 0},
                {"2030-03-01T18:00:00Z", 1},
                {"2030-03-01T19:00:00Z", 1},
                {"2030-03-01T20:00:00Z", 1}};
    for (size_t i = 0; i < 4; i++) {
        json_t *x = json_array_get(d, i);
        cr_expect_str_eq(json_string_value(json_object_get(x, "tick")), want[i].tick);
        cr_expect_eq(json_integer_value(json_object_get(x, "bytes")) > 0, want[i].has_bytes, "%s",
                     want[i].tick);
    }
    const char *pruned = json_string_value(json_object_get(json_array_get(d, 0), "id"));
    struct run_result r = sc_run(&s, "replay", "--delivery", pruned, NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "its payload was pruned") != NULL, "%s", r.err);
    run_result_free(&r);
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, a_receiver_slower_than_the_timeout_is_a_failed_attempt, .timeout = 60)
{
    struct scenario s;
    struct scenario_opts o = {.sink_extra = ", timeout: 500ms"};
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, &o);
    /* the pipeline also says timeout: 2s; the later key would be a duplicate */
    char *text = read_file(s.config);
    char *p = strstr(text, "timeout: 2s, ");
    cr_assert_not_null(p);
    memmove(p, p + 13, strlen(p + 13) + 1);
    write_file(s.config, text);
    free(text);
    struct receiver_rule slow = {.mode = RECV_HANG, .status = 200, .hang_ms = 1500};
    receiver_script(&s.r, &slow, 1);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    json_t *d = sc_deliveries(&s);
    json_t *a = attempts_of(json_array_get(d, 0));
    cr_assert_eq(json_array_size(a), 2, "the slow answer did not count; the retry did");
    const char *err = json_string_value(json_object_get(json_array_get(a, 0), "error"));
    cr_expect(err && strstr(err, "timed out after 500 ms"), "%s", err ? err : "(null)");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(d, 0), "state")),
                     "delivered");
    json_decref(d);
    scenario_stop(&s);
}

Test(delivery, standard_webhooks_headers_verify, .timeout = 60)
{
    /* 24 random bytes, base64 */
    static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    char extra[256];
    snprintf(extra, sizeof extra, ", standard_webhooks: true, standard_webhooks_secret: %s",
             secret);
    struct scenario s;
    struct scenario_opts o = {.sink_extra = extra};
    static const char *const one[] = {"v1", NULL};
    scenario_start(&s, &o);
    sc_setup(&s, "2030-03-01T15:45:00Z", one);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    struct received r;
    cr_assert_eq(receiver_get_payload(&s.r, 0, &r), 0);
    cr_assert_not_null(r.webhook_signature);
    cr_expect_str_eq(r.webhook_id, r.delivery_id, "webhook-id is the delivery id");
    cr_expect_eq(iso("2030-03-01T16:00:00Z") <= atoll(r.webhook_timestamp), 1,
                 "webhook-timestamp is the daemon's clock");
    expect_standard_signature(&r, secret);
    cr_expect(r.signature_ok, "SC-Signature too");
    received_free(&r);
    scenario_stop(&s);
}

/* How many lines of headers are exactly `line`. */
static int count_line(const char *headers, const char *line)
{
    int n = 0;
    size_t len = strlen(line);
    for (const char *p = headers; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        n += l == len && strncmp(p, line, len) == 0;
        p = end ? end + 1 : p + l;
    }
    return n;
}

Test(delivery, every_request_carries_its_own_headers_and_the_configured_ones, .timeout = 60)
{
    /* more deliveries than connections, so transfers are reused: nothing may leak from one
     * request's headers into the next */
    static const char secret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    char extra[512];
    snprintf(extra, sizeof extra,
             ", concurrency: 4, headers: [\"X-Fleet: blue\", \"Authorization: Bearer abc\"], "
             "standard_webhooks: true, standard_webhooks_secret: %s",
             secret);
    struct scenario s;
    struct scenario_opts o = {.sink_extra = extra, .delivery = "{spread: [0s, 0s]}\n"};
    static const char *const twelve[] = {"v1", "v2", "v3",  "v4",  "v5",  "v6", "v7",
                                         "v8", "v9", "v10", "v11", "v12", NULL};
    scenario_start(&s, &o);
    sc_setup(&s, "2030-03-01T15:45:00Z", twelve);
    sc_virtual(&s, "2030-03-01T15:45:00Z", "2030-03-01T16:30:00Z");
    cr_assert_eq(sc_payloads(&s), 12);
    for (size_t k = 0; k < 12; k++) {
        struct received r;
        cr_assert_eq(receiver_get_payload(&s.r, k, &r), 0);
        char line[128];
        cr_expect_eq(count_line(r.headers, "X-Fleet: blue"), 1, "%s", r.headers);
        cr_expect_eq(count_line(r.headers, "Authorization: Bearer abc"), 1, "%s", r.headers);
        snprintf(line, sizeof line, "Metronome-Delivery-Id: %s", r.delivery_id);
        cr_expect_eq(count_line(r.headers, line), 1, "its own id, once: %s", r.headers);
        snprintf(line, sizeof line, "webhook-id: %s", r.delivery_id);
        cr_expect_eq(count_line(r.headers, line), 1, "%s", r.headers);
        cr_expect(r.signature_ok, "SC-Signature of payload %zu", k);
        received_free(&r);
    }
    scenario_stop(&s);
}
