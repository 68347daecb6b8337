/* The admin API of a running daemon, over real HTTP on loopback: auth and the
 * 4xx answers to bad requests, webhooks created at run time (validated like
 * the pipeline's, kept across restarts, listed beside the pipeline's), the
 * Smartcar-compatible routes' error shape, replay while the daemon runs -
 * through the API and through the CLI on the same ledger - and /metrics
 * against the ledger. */
#include "daemon.h"
#include "scenario.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ADMIN "admin-secret-token"
#define ADMIN_PORT0 "admin: {listen: \"127.0.0.1:0\", token: " ADMIN "}\n"

static struct http_reply get(const struct daemon *d, const char *path)
{
    return http_call(d, "GET", path, ADMIN, NULL, 0);
}

static struct http_reply post(const struct daemon *d, const char *path, const char *body)
{
    return http_call(d, "POST", path, ADMIN, body, body ? strlen(body) : 0);
}

/* The reply's status is want and its JSON error is code (when code is set). */
static void expect_status(struct http_reply r, long want, const char *code, const char *what)
{
    cr_expect_eq(r.status, want, "%s: HTTP %ld, want %ld: %s", what, r.status, want, r.body);
    if (code)
        cr_expect_str_eq(json_string_value(json_object_get(r.json, "error")) ?: "(none)", code,
                         "%s: %s", what, r.body);
    http_reply_free(&r);
}

static const char *jstr(const json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

Test(api, refuses_what_it_should_with_the_right_4xx)
{
    struct scenario s;
    struct daemon d;
    scenario_start(&s, &(struct scenario_opts){.extra = ADMIN_PORT0});
    daemon_start(&d, s.config, ADMIN, NULL);

    struct http_reply r = http_call(&d, "GET", "/api/v1/webhooks", NULL, NULL, 0);
    cr_expect_eq(r.status, 401, "no token: %ld", r.status);
    cr_expect(strstr(r.headers, "WWW-Authenticate: Bearer") != NULL, "%s", r.headers);
    http_reply_free(&r);
    expect_status(http_call(&d, "GET", "/api/v1/webhooks", "wrong", NULL, 0), 401, "unauthorized",
                  "a wrong token");
    expect_status(http_call(&d, "GET", "/api/v1/webhooks", "admin-secret-toke", NULL, 0), 401,
                  "unauthorized", "a prefix of the token");
    expect_status(get(&d, "/api/v1/webhooks?token=" ADMIN), 400, "bad_request",
                  "a token in the query string");
    expect_status(get(&d, "/api/v1/nothing-here"), 404, "not_found", "an unknown route");
    r = http_call(&d, "DELETE", "/healthz", NULL, NULL, 0);
    cr_expect_eq(r.status, 405);
    cr_expect(strstr(r.headers, "Allow: GET") != NULL, "%s", r.headers);
    http_reply_free(&r);
    expect_status(get(&d, "/api/v1/webhooks/../status"), 400, "bad_request", "a .. segment");
    expect_status(get(&d, "/api/v1/webhooks/%2e%2e/status"), 400, "bad_request",
                  "an encoded .. segment");
    expect_status(get(&d, "/api/v1/webhooks/fl%2Feet"), 400, "bad_request", "an encoded slash");
    expect_status(get(&d, "/api/v1/webhooks/%zz"), 400, "bad_request", "a malformed escape");
    expect_status(get(&d, "/api/v1/webhooks/fl%00eet"), 400, "bad_request", "an encoded NUL");
    expect_status(get(&d, "/api/v1/webhooks?limit=0"), 400, "bad_request", "limit 0");
    expect_status(get(&d, "/api/v1/webhooks?colour=red"), 400, "bad_request", "unknown parameter");
    expect_status(get(&d, "/api/v1/webhooks?cursor=%21%21"), 400, "bad_request", "a bad cursor");
    size_t big = (1u << 20) + 100;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    expect_status(http_call(&d, "POST", "/api/v1/webhooks", ADMIN, huge, big), 413,
                  "payload_too_large", "a body over 1 MiB");
    free(huge);
    r = post(&d, "/api/v1/webhooks", "{\"name\": \"x\",");
    cr_expect_eq(r.status, 400);
    cr_expect(strstr(jstr(r.json, "message"), "malformed JSON") != NULL, "%s", r.body);
    http_reply_free(&r);
    expect_status(post(&d, "/api/v1/webhooks", "[1]"), 400, "bad_request", "a list body");
    expect_status(get(&d, "/healthz"), 200, NULL, "healthz");
    expect_status(get(&d, "/readyz"), 200, NULL, "readyz");
    r = http_call(&d, "GET", "/api/v1/openapi.json", NULL, NULL, 0);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(jstr(r.json, "openapi"), "3.1.0");
    http_reply_free(&r);
    cr_expect_eq(daemon_stop(&d), 0, "SIGTERM stops it cleanly");
    scenario_stop(&s);
}

Test(api, webhooks_created_at_run_time_are_validated_listed_and_kept)
{
    struct scenario s;
    struct daemon d;
    scenario_start(&s, &(struct scenario_opts){.extra = ADMIN_PORT0});
    daemon_start(&d, s.config, ADMIN, NULL);
    char hook[256], body[1024];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%u/api-hook", s.r.port);

    /* the same checks as the pipeline's, naming the JSON field */
    snprintf(body, sizeof body,
             "{\"name\":\"api-hook\",\"callbackUri\":\"%s\",\"cadence\":{\"policy\":\"cron\","
             "\"expr\":\"61 * * * *\"},\"endpoints\":[\"/odometer\"],\"sinks\":[\"callback\"]}",
             hook);
    struct http_reply r = post(&d, "/api/v1/webhooks", body);
    cr_expect_eq(r.status, 400, "%s", r.body);
    /* the cron plugin's create() refused it: the field is the cadence, the message says why */
    cr_expect_str_eq(jstr(r.json, "field"), "cadence", "%s", r.body);
    cr_expect(strstr(jstr(r.json, "message"), "minute '61' is out of range") != NULL, "%s", r.body);
    http_reply_free(&r);
    snprintf(body, sizeof body,
             "{\"name\":\"api-hook\",\"callbackUri\":\"%s\",\"cadence\":{\"policy\":\"hourly\"},"
             "\"endpoints\":[\"/odometr\"],\"sinks\":[\"callback\"]}",
             hook);
    r = post(&d, "/api/v1/webhooks", body);
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "field"), "endpoints[0]", "%s", r.body);
    cr_expect(strstr(jstr(r.json, "message"), "did you mean '/odometer'") != NULL, "%s", r.body);
    http_reply_free(&r);
    r = post(&d, "/api/v1/webhooks",
             "{\"name\":\"api-hook\",\"callbackUri\":\"ftp://x\",\"cadence\":{\"policy\":"
             "\"hourly\"},\"endpoints\":[\"/odometer\"],\"sinks\":[\"callback\"],\"colour\":1}");
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "field"), "colour", "unknown keys first: %s", r.body);
    http_reply_free(&r);
    snprintf(body, sizeof body,
             "{\"name\":\"fleet\",\"callbackUri\":\"%s\",\"cadence\":{\"policy\":\"hourly\"},"
             "\"endpoints\":[\"/odometer\"],\"sinks\":[\"callback\"]}",
             hook);
    expect_status(post(&d, "/api/v1/webhooks", body), 409, "conflict", "the pipeline's name");

    /* a pipeline webhook is read-only: 409 naming where it is defined */
    r = http_call(&d, "PATCH", "/api/v1/webhooks/fleet", ADMIN, "{\"units\":\"imperial\"}", 20);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect(strstr(jstr(r.json, "message"), "pipeline.yaml:") != NULL, "%s", r.body);
    http_reply_free(&r);
    expect_status(http_call(&d, "DELETE", "/api/v1/webhooks/fleet", ADMIN, NULL, 0), 409,
                  "conflict", "deleting a pipeline webhook");

    /* its own retry policy, checked like the pipeline's */
    snprintf(body, sizeof body,
             "{\"name\":\"api-hook\",\"callbackUri\":\"%s\",\"cadence\":{\"policy\":\"hourly\"},"
             "\"endpoints\":[\"/odometer\"],\"sinks\":[\"callback\"],\"delivery\":{"
             "\"retrySchedule\":[\"2m\",\"1m\"]}}",
             hook);
    r = post(&d, "/api/v1/webhooks", body);
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "field"), "delivery.retrySchedule[1]", "%s", r.body);
    cr_expect(strstr(jstr(r.json, "message"), "must increase") != NULL, "%s", r.body);
    http_reply_free(&r);
    snprintf(
        body, sizeof body,
        "{\"name\":\"api-hook\",\"callbackUri\":\"%s\",\"cadence\":{\"policy\":\"interval\","
        "\"every\":\"1m\"},\"endpoints\":[\"/odometer\"],\"sinks\":[\"callback\"],\"delivery\":{"
        "\"supersede\":true,\"retrySchedule\":[\"2m\"]}}",
        hook);
    r = post(&d, "/api/v1/webhooks", body);
    cr_expect_eq(r.status, 400, "a first retry after the next tick, with supersede: %s", r.body);
    cr_expect(strstr(jstr(r.json, "message"), "supersede") != NULL, "%s", r.body);
    http_reply_free(&r);

    /* created */
    snprintf(body, sizeof body,
             "{\"name\":\"api-hook\",\"callbackUri\":\"%s\",\"cadence\":{\"policy\":\"daily\","
             "\"at\":\"06:30\"},\"endpoints\":[\"/odometer\",\"/battery\"],\"units\":\"imperial\","
             "\"sinks\":[\"callback\"],\"delivery\":{\"retrySchedule\":[\"30s\",\"2m\"],"
             "\"supersede\":true}}",
             hook);
    r = post(&d, "/api/v1/webhooks", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_t *policy = json_object_get(r.json, "delivery");
    cr_expect_eq(json_integer_value(json_object_get(policy, "retries")), 2, "%s", r.body);
    cr_expect_eq(json_array_size(json_object_get(policy, "retrySchedule")), 2, "%s", r.body);
    cr_expect_str_eq(jstr(policy, "retryWindow"), "2m", "the window ends at the last retry: %s",
                     r.body);
    cr_expect(json_is_false(json_object_get(policy, "autoRecover")), "off by default: %s", r.body);
    cr_expect(json_is_true(json_object_get(policy, "supersede")), "%s", r.body);
    cr_expect(json_is_false(json_object_get(policy, "ordered")), "off by default: %s", r.body);
    cr_expect_str_eq(jstr(r.json, "origin"), "api");
    cr_expect_str_eq(jstr(r.json, "state"), "unverified");
    cr_expect_str_eq(jstr(json_object_get(r.json, "cadence"), "at"), "06:30", "%s", r.body);
    char id[64], path[160];
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    http_reply_free(&r);
    expect_status(post(&d, "/api/v1/webhooks", body), 409, "conflict", "created twice");

    /* a page of one, then the next */
    r = get(&d, "/api/v1/webhooks?limit=1");
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 1, "%s", r.body);
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r.json, "data"), 0), "name"), "api-hook");
    char next[512];
    snprintf(next, sizeof next, "/api/v1/webhooks?limit=1&cursor=%s", jstr(r.json, "nextCursor"));
    http_reply_free(&r);
    r = get(&d, next);
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r.json, "data"), 0), "name"), "fleet",
                     "%s", r.body);
    cr_expect(json_is_null(json_object_get(r.json, "nextCursor")), "%s", r.body);
    http_reply_free(&r);

    /* its plan, from the same cadence the engine uses */
    snprintf(path, sizeof path, "/api/v1/webhooks/%s/plan?count=2&from=2030-03-01T07:00:00Z", id);
    r = get(&d, path);
    json_t *ticks = json_object_get(r.json, "ticks");
    cr_expect_eq(json_array_size(ticks), 2, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_array_get(ticks, 0)), "2030-03-02T06:30:00Z");
    cr_expect_str_eq(json_string_value(json_array_get(ticks, 1)), "2030-03-03T06:30:00Z");
    http_reply_free(&r);
    snprintf(path, sizeof path, "/api/v1/webhooks/%s/plan?count=0", id);
    expect_status(get(&d, path), 400, "bad_request", "count 0");
    /* replay checks its body, and that the webhook can send */
    snprintf(path, sizeof path, "/api/v1/webhooks/%s/replay", id);
    expect_status(post(&d, path, "{\"state\":\"pending\"}"), 400, "bad_request",
                  "replaying pending deliveries");
    r = post(&d, path, "{\"colour\":1}");
    cr_expect_str_eq(jstr(r.json, "field"), "colour", "%s", r.body);
    http_reply_free(&r);
    expect_status(post(&d, path, NULL), 409, "conflict", "replay for an unverified webhook");
    /* a name cannot change */
    snprintf(path, sizeof path, "/api/v1/webhooks/%s", id);
    r = http_call(&d, "PATCH", path, ADMIN, "{\"name\":\"other\"}", 16);
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "field"), "name", "%s", r.body);
    http_reply_free(&r);

    /* changed through the API, and seen by the CLI */
    r = http_call(&d, "PATCH", "/api/v1/webhooks/api-hook", ADMIN, "{\"units\":\"metric\"}", 18);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "units"), "metric");
    http_reply_free(&r);
    struct run_result cli = sc_run(&s, "webhook", "list", "--json", NULL);
    cr_expect(strstr(cli.out, "\"origin\":\"api\"") && strstr(cli.out, "\"origin\":\"pipeline\""),
              "%s", cli.out);
    run_result_free(&cli);

    /* kept across a restart */
    cr_expect_eq(daemon_stop(&d), 0);
    daemon_start(&d, s.config, ADMIN, NULL);
    snprintf(path, sizeof path, "/api/v1/webhooks/%s", id);
    r = get(&d, path);
    cr_expect_eq(r.status, 200, "after a restart: %s", r.body);
    cr_expect_str_eq(jstr(r.json, "name"), "api-hook");
    http_reply_free(&r);
    expect_status(http_call(&d, "DELETE", path, ADMIN, NULL, 0), 200, NULL, "delete");
    expect_status(get(&d, path), 404, "not_found", "deleted");
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

Test(api, smartcar_routes_answer_in_smartcars_error_shape)
{
    struct scenario s;
    struct daemon d;
    scenario_start(&s, &(struct scenario_opts){.extra = ADMIN_PORT0});
    daemon_start(&d, s.config, ADMIN, NULL);
    struct http_reply r =
        http_call(&d, "POST", "/v2.0/vehicles/car-9/webhooks/fleet", NULL, NULL, 0);
    cr_expect_eq(r.status, 401, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "type"), "AUTHENTICATION", "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(r.json, "statusCode")), 401);
    cr_expect(strstr(r.headers, "sc-request-id: ") != NULL, "%s", r.headers);
    cr_expect(*jstr(r.json, "requestId"), "%s", r.body);
    http_reply_free(&r);
    r = http_call(&d, "POST", "/v2.0/vehicles/car-9/webhooks/nope", "vehicle-token", NULL, 0);
    cr_expect_eq(r.status, 404, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "type"), "RESOURCE_NOT_FOUND", "%s", r.body);
    http_reply_free(&r);
    r = http_call(&d, "POST", "/v2.0/vehicles/car-9/webhooks/fleet", "vehicle-token", NULL, 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "vehicleId"), "car-9");
    cr_expect(*jstr(r.json, "webhookId"), "%s", r.body);
    http_reply_free(&r);
    r = get(&d, "/api/v1/webhooks/fleet/subscriptions?vehicle=car-9");
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 1, "%s", r.body);
    http_reply_free(&r);
    r = http_call(&d, "DELETE", "/v2.0/vehicles/car-9/webhooks/fleet", "vehicle-token", NULL, 0);
    cr_expect_eq(r.status, 401, "unsubscribing takes the management token: %s", r.body);
    cr_expect_str_eq(jstr(r.json, "type"), "AUTHENTICATION");
    http_reply_free(&r);
    r = http_call(&d, "DELETE", "/v2.0/vehicles/car-9/webhooks/fleet", SCENARIO_TOKEN, "{}", 2);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "status"), "success");
    http_reply_free(&r);
    r = get(&d, "/api/v1/webhooks/fleet/subscriptions");
    cr_expect_eq(json_array_size(json_object_get(r.json, "data")), 0, "%s", r.body);
    http_reply_free(&r);
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

/* A pipeline whose webhook ticks every second, verified, with v1 subscribed,
 * and the daemon running it. */
static void start_ticking(struct scenario *s, struct daemon *d, const char *delivery)
{
    scenario_start(s, &(struct scenario_opts){.extra = ADMIN_PORT0,
                                              .cadence = "{policy: interval, every: 1s}",
                                              .delivery = delivery});
    sc_ok(s, "webhook", "verify", "fleet", NULL);
    sc_ok(s, "subscribe", "fleet", "v1", NULL);
    daemon_start(d, s->config, ADMIN, NULL);
}

/* ---- replay while the daemon runs ---------------------------------------------------------- */

struct wait_state {
    struct daemon *d;
    struct scenario *s;
    const char *want;
    char found[64];
};

static int webhook_state_is(void *arg)
{
    struct wait_state *w = arg;
    struct http_reply r = get(w->d, "/api/v1/webhooks/fleet");
    int ok = strcmp(jstr(r.json, "state"), w->want) == 0;
    http_reply_free(&r);
    return ok;
}

/* A failed delivery of fleet other than w->want, into w->found. */
static int a_failed_delivery(void *arg)
{
    struct wait_state *w = arg;
    struct http_reply r = get(w->d, "/api/v1/deliveries?webhook=fleet&state=failed");
    json_t *x;
    size_t i;
    json_array_foreach(json_object_get(r.json, "data"), i, x)
    {
        if (strcmp(jstr(x, "kind"), "scheduled") == 0 &&
            (!w->want || strcmp(jstr(x, "id"), w->want) != 0)) {
            snprintf(w->found, sizeof w->found, "%s", jstr(x, "id"));
            break;
        }
    }
    http_reply_free(&r);
    return w->found[0] != 0;
}

/* The receiver took delivery w->want with a 2xx. */
static int delivered_to_receiver(void *arg)
{
    struct wait_state *w = arg;
    size_t n = receiver_count(&w->s->r);
    for (size_t i = 0; i < n; i++) {
        struct received x;
        if (receiver_get(&w->s->r, i, &x) != 0)
            continue;
        int hit = x.delivery_id && strcmp(x.delivery_id, w->want) == 0 && x.status == 200;
        received_free(&x);
        if (hit)
            return 1;
    }
    return 0;
}

static void fail_until_disabled(struct daemon *d, struct scenario *s, const char *except, char *id,
                                size_t idlen)
{
    receiver_default(&s->r, (struct receiver_rule){.status = 500, .retry_after = -1});
    struct wait_state w = {.d = d, .s = s, .want = "disabled"};
    cr_assert(poll_until(webhook_state_is, &w, 20000), "a failing receiver disables the webhook");
    w.want = except;
    cr_assert(poll_until(a_failed_delivery, &w, 5000), "its delivery is recorded failed");
    snprintf(id, idlen, "%s", w.found);
    receiver_default(&s->r, (struct receiver_rule){.status = 200, .retry_after = -1});
}

Test(api, a_disabled_webhook_is_enabled_and_replayed_while_running, .timeout = 120)
{
    struct scenario s;
    struct daemon d;
    char first[64], second[64];
    start_ticking(&s, &d, "{retries: 0, spread: [0s, 0s]}");

    /* through the API */
    fail_until_disabled(&d, &s, NULL, first, sizeof first);
    struct http_reply r = post(&d, "/api/v1/webhooks/fleet/enable", NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "state"), "active");
    http_reply_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/deliveries/%s/replay", first);
    r = post(&d, path, NULL);
    cr_expect_eq(json_integer_value(json_object_get(r.json, "replayed")), 1, "%s", r.body);
    http_reply_free(&r);
    struct wait_state w = {.d = &d, .s = &s, .want = first};
    cr_expect(poll_until(delivered_to_receiver, &w, 10000),
              "the replayed payload arrives with its delivery id %s", first);
    snprintf(path, sizeof path, "/api/v1/deliveries/%s", first);
    r = get(&d, path);
    cr_expect_str_eq(jstr(r.json, "state"), "delivered", "%s", r.body);
    cr_expect(json_array_size(json_object_get(r.json, "attempts")) >= 2, "%s", r.body);
    cr_expect(*jstr(r.json, "payload") == '{' && strlen(jstr(r.json, "signature")) == 64, "%s",
              r.body);
    http_reply_free(&r);

    /* and through the CLI, on the same ledger, while the daemon runs */
    fail_until_disabled(&d, &s, first, second, sizeof second);
    sc_ok(&s, "webhook", "enable", "fleet", NULL);
    sc_ok(&s, "replay", "--delivery", second, NULL);
    w.want = second;
    if (!poll_until(delivered_to_receiver, &w, 10000)) {
        snprintf(path, sizeof path, "/api/v1/deliveries/%s", second);
        r = get(&d, path);
        char *log = read_file(d.log);
        cr_expect(0, "the payload replayed by the CLI arrives with its delivery id %s: %s\n%s",
                  second, r.body, log);
        free(log);
        http_reply_free(&r);
    }
    cr_expect(daemon_logged(&d, "deliveries are failing"), "a failing callback is logged");
    cr_expect(daemon_logged(&d, "deliveries recovered after"), "and its recovery");
    cr_expect(daemon_logged(&d, "webhook disabled (retries-exhausted)"), "and the disable");
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

/* ---- metrics -------------------------------------------------------------------------------- */

static int idle(void *arg)
{
    struct daemon *d = arg;
    struct http_reply r = get(d, "/api/v1/status");
    int ok = r.status == 200 && json_integer_value(json_object_get(r.json, "inFlight")) == 0 &&
             json_integer_value(json_object_get(r.json, "queuedOutcomes")) == 0 &&
             json_integer_value(json_object_get(
                 json_object_get(json_object_get(r.json, "ledger"), "deliveries"), "pending")) == 0;
    http_reply_free(&r);
    return ok;
}

static int some_payloads(void *arg)
{
    return sc_payloads(arg) >= 3;
}

/* The value of the sample named exactly `series` in Prometheus text. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

Test(api, metrics_parse_as_prometheus_text_and_agree_with_the_ledger, .timeout = 60)
{
    struct scenario s;
    struct daemon d;
    start_ticking(&s, &d, "{spread: [0s, 0s]}");
    cr_assert(poll_until(some_payloads, &s, 15000), "payloads arrive");
    sc_ok(&s, "unsubscribe", "fleet", "v1", NULL); /* no more deliveries: the counts settle */
    cr_assert(poll_until(idle, &d, 10000), "nothing in flight");
    struct http_reply m = http_call(&d, "GET", "/metrics", NULL, NULL, 0);
    cr_assert_eq(m.status, 200);
    cr_expect(strstr(m.headers, "text/plain; version=0.0.4") != NULL, "%s", m.headers);
    regex_t line;
    regcomp(&line,
            "^(# (HELP|TYPE) [a-z_]+ .+|[a-z_:]+(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? "
            "-?[0-9.e+]+)$",
            REG_EXTENDED | REG_NOSUB);
    char *copy = strdup(m.body), *save = NULL;
    int lines = 0;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++)
        cr_expect_eq(regexec(&line, l, 0, NULL, 0), 0, "not Prometheus text: '%s'", l);
    free(copy);
    regfree(&line);
    cr_expect(lines > 40, "%d lines", lines);
    struct http_reply led = get(&d, "/api/v1/deliveries?webhook=fleet&state=delivered&limit=1000");
    double delivered = (double)json_array_size(json_object_get(led.json, "data"));
    http_reply_free(&led);
    cr_expect(delivered >= 3);
    cr_expect_eq(
        sample(m.body, "metronome_deliveries_total{webhook=\"fleet\",outcome=\"delivered\"}"),
        delivered, "delivered counter vs the ledger's %g:\n%s", delivered, m.body);
    cr_expect_eq(sample(m.body, "metronome_attempts_total{webhook=\"fleet\",class=\"2xx\"}"),
                 delivered);
    cr_expect_eq(sample(m.body, "metronome_ledger_deliveries{state=\"delivered\"}"), delivered);
    cr_expect_eq(sample(m.body, "metronome_attempt_duration_seconds_count{webhook=\"fleet\"}"),
                 delivered);
    cr_expect(sample(m.body, "metronome_ticks_fired_total") >= delivered);
    cr_expect_eq(sample(m.body, "metronome_webhooks{state=\"active\"}"), 1);
    cr_expect_eq(sample(m.body, "metronome_courier_in_flight"), 0);
    http_reply_free(&m);
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

/* ---- metronome status ---------------------------------------------------------------------- */

static unsigned free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

Test(api, status_asks_the_running_daemon)
{
    struct scenario s;
    struct daemon d;
    char extra[256];
    snprintf(extra, sizeof extra, "admin: {listen: \"127.0.0.1:%u\", token: %s}\n", free_port(),
             ADMIN);
    scenario_start(&s, &(struct scenario_opts){.extra = extra});
    struct run_result r = sc_run(&s, "status", NULL);
    cr_expect_eq(r.status, 1, "nothing runs yet: %s", r.err);
    cr_expect(strstr(r.err, "no metronome answers") != NULL, "%s", r.err);
    run_result_free(&r);
    daemon_start(&d, s.config, ADMIN, NULL);
    r = sc_run(&s, "status", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.out, ", ready") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "fleet ") != NULL && strstr(r.out, "(unverified)") != NULL,
              "next ticks with states: %s", r.out);
    run_result_free(&r);
    r = sc_run(&s, "status", "--json", NULL);
    json_t *j = json_loads(r.out, 0, NULL);
    cr_expect(json_is_true(json_object_get(j, "ready")), "%s", r.out);
    cr_expect_eq(json_array_size(json_object_get(j, "nodes")), 1, "%s", r.out);
    json_decref(j);
    run_result_free(&r);
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

/* ---- receiver protection in status and metrics ---------------------------------------------- */

static int origin_deferred(void *arg)
{
    struct daemon *d = arg;
    struct http_reply r = get(d, "/api/v1/status");
    json_t *w = json_array_get(json_object_get(r.json, "waits"), 0);
    int ok = w && json_integer_value(json_object_get(w, "deferred")) >= 2;
    http_reply_free(&r);
    return ok;
}

Test(api, an_origin_that_asked_to_wait_shows_in_status_and_metrics, .timeout = 60)
{
    struct scenario s;
    struct daemon d;
    char admin[128];
    snprintf(admin, sizeof admin, "admin: {listen: \"127.0.0.1:%u\", token: %s}\n", free_port(),
             ADMIN);
    scenario_start(&s, &(struct scenario_opts){.extra = admin,
                                               .sink_extra = ", pause_on_retry_after: true",
                                               .cadence = "{policy: interval, every: 1s}",
                                               .delivery = "{spread: [0s, 0s]}"});
    sc_ok(&s, "webhook", "verify", "fleet", NULL);
    sc_ok(&s, "subscribe", "fleet", "v1", NULL);
    receiver_default(&s.r, (struct receiver_rule){.status = 503, .retry_after = 3600});
    daemon_start(&d, s.config, ADMIN, NULL);
    cr_assert(poll_until(origin_deferred, &d, 20000), "later ticks' deliveries are deferred");
    char origin[64], series[128];
    snprintf(origin, sizeof origin, "http://127.0.0.1:%u", s.r.port);
    struct http_reply r = get(&d, "/api/v1/status");
    json_t *w = json_array_get(json_object_get(r.json, "waits"), 0);
    cr_expect_str_eq(jstr(w, "origin"), origin);
    json_int_t left = json_integer_value(json_object_get(w, "waitSeconds"));
    cr_expect(left > 3500 && left <= 3600, "waits out the Retry-After: %lld", (long long)left);
    cr_expect_eq(json_integer_value(json_object_get(w, "lastStatus")), 503);
    cr_expect(
        json_integer_value(json_object_get(json_object_get(r.json, "counters"), "deferred")) >= 2,
        "%s", r.body);
    http_reply_free(&r);
    r = get(&d, "/api/v1/webhooks/fleet");
    cr_expect_str_eq(jstr(r.json, "state"), "active", "slowed, not disabled");
    http_reply_free(&r);
    struct run_result st = sc_run(&s, "status", NULL);
    cr_expect(strstr(st.out, origin) != NULL && strstr(st.out, "Retry-After") != NULL, "%s%s",
              st.out, st.err);
    run_result_free(&st);
    r = http_call(&d, "GET", "/metrics", NULL, NULL, 0);
    snprintf(series, sizeof series, "metronome_origin_wait_seconds{origin=\"%s\"}", origin);
    double wait = sample(r.body, series);
    cr_expect(wait > 3500 && wait <= 3600, "%s = %g", series, wait);
    snprintf(series, sizeof series, "metronome_deliveries_deferred_total{origin=\"%s\"}", origin);
    cr_expect(sample(r.body, series) >= 2, "%s", r.body);
    http_reply_free(&r);
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

/* ---- TLS, metrics_auth, logs ---------------------------------------------------------- */

Test(api, speaks_https_with_tls_cert_and_key_and_guards_metrics_on_request)
{
    struct scenario s;
    struct daemon d;
    char *dir = make_tmpdir(), cmd[1024], extra[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext "
             "subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null",
             dir, dir);
    cr_assert_eq(system(cmd), 0, "openssl makes a certificate");
    snprintf(extra, sizeof extra,
             "admin: {listen: \"127.0.0.1:%u\", token: %s, metrics_auth: true, tls_cert: "
             "\"%s/cert.pem\", tls_key: \"%s/key.pem\"}\n",
             free_port(), ADMIN, dir, dir);
    scenario_start(&s, &(struct scenario_opts){.extra = extra});
    char *ca = path_join(dir, "cert.pem");
    daemon_start_tls(&d, s.config, ADMIN, ca);
    cr_expect(strncmp(d.base, "https://", 8) == 0, "%s", d.base);
    /* the daemon's own certificate is what `status` trusts */
    struct run_result r = sc_run(&s, "status", NULL);
    cr_expect_eq(r.status, 0, "status over HTTPS: %s", r.err);
    run_result_free(&r);
    struct http_reply h = http_call(&d, "GET", "/metrics", ADMIN, NULL, 0);
    cr_expect_eq(h.status, 200, "over HTTPS: %ld", h.status);
    http_reply_free(&h);
    /* a client that does not trust the certificate is refused the connection */
    d.ca = NULL;
    h = http_call(&d, "GET", "/healthz", NULL, NULL, 0);
    cr_expect_eq(h.status, 0, "no certificate check was skipped: %ld", h.status);
    http_reply_free(&h);
    free(ca);
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
    free(dir);

    scenario_start(&s,
                   &(struct scenario_opts){.extra = "admin: {listen: \"127.0.0.1:0\", token: " ADMIN
                                                    ", metrics_auth: true}\n"});
    daemon_start(&d, s.config, ADMIN, NULL);
    expect_status(http_call(&d, "GET", "/metrics", NULL, NULL, 0), 401, "unauthorized",
                  "metrics_auth: no token");
    expect_status(http_call(&d, "GET", "/metrics", ADMIN, NULL, 0), 200, NULL, "with the token");
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

Test(api, logs_are_json_lines_on_request_and_filtered_by_level)
{
    struct scenario s;
    scenario_start(&s, NULL);
    sc_setup(&s, "2030-03-01T15:45:00Z", (const char *const[]){"v1", NULL});
    struct run_result r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T15:45:00Z",
                                 "--until", "2030-03-01T17:10:00Z", "--log-format", "json", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    int lines = 0, ticks = 0;
    char *save = NULL;
    for (char *l = strtok_r(r.err, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
        json_t *j = json_loads(l, 0, NULL);
        cr_expect(j && json_is_string(json_object_get(j, "time")) &&
                      json_is_string(json_object_get(j, "level")) &&
                      json_is_string(json_object_get(j, "message")),
                  "not a JSON log line: %s", l);
        ticks += j && strstr(jstr(j, "message"), "fired: 1 job(s)") != NULL &&
                 strcmp(jstr(j, "origin"), "fleet") == 0;
        json_decref(j);
    }
    cr_expect(lines >= 4 && ticks == 2, "%d lines, %d ticks", lines, ticks);
    run_result_free(&r);
    r = sc_run(&s, "run", "--clock", "virtual", "--start", "2030-03-01T17:10:00Z", "--until",
               "2030-03-01T19:10:00Z", "--log-level", "warn", NULL);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "info") == NULL, "warn hides info: %s", r.err);
    run_result_free(&r);
    r = sc_run(&s, "run", "--log-level", "loud", NULL);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "--log-level: want error, warn, info or debug") != NULL, "%s", r.err);
    run_result_free(&r);
    scenario_stop(&s);
}

/* ---- one ledger, several connections ----------------------------------------------------------
 */

struct payloads_after {
    struct scenario *s;
    size_t at_least;
};

static int payloads_at_least(void *arg)
{
    struct payloads_after *p = arg;
    return sc_payloads(p->s) >= p->at_least;
}

Test(api, the_daemons_writes_stay_visible_while_commands_come_and_go, .timeout = 60)
{
    /* The API's store connections live in the daemon's process beside the
     * engine's. Opening and closing the ledger file behind SQLite's back there
     * (a header check did) drops the process's POSIX locks; the next command
     * to close then takes itself for the last user and removes the WAL the
     * daemon is still writing to: from then on nothing the daemon records
     * reaches the file. */
    struct scenario s;
    struct daemon d;
    start_ticking(&s, &d, "{spread: [0s, 0s]}");
    struct payloads_after p = {.s = &s, .at_least = 1};
    cr_assert(poll_until(payloads_at_least, &p, 15000));
    sc_ok(&s, "subscribe", "fleet", "v2", NULL); /* commands open, write and close the ledger */
    sc_ok(&s, "unsubscribe", "fleet", "v2", NULL);
    p.at_least = sc_payloads(&s) + 3;
    cr_assert(poll_until(payloads_at_least, &p, 15000), "the daemon keeps delivering");
    size_t sent = sc_payloads(&s);
    json_t *all = sc_deliveries(&s); /* another process, reading the file */
    size_t delivered = 0, i;
    json_t *x;
    json_array_foreach(all, i, x) delivered += strcmp(jstr(x, "state"), "delivered") == 0;
    json_decref(all);
    cr_expect(delivered + 1 >= sent, "a command reads %zu delivered of the %zu sent", delivered,
              sent);
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

/* ---- a webhook's whole life through the API -----------------------------------------------------
 */

struct payload_of {
    struct scenario *s;
    const char *webhook_id;
};

/* A scheduled payload for the webhook arrived. */
static int payload_of_webhook(void *arg)
{
    struct payload_of *p = arg;
    size_t n = receiver_count(&p->s->r);
    int found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        struct received x;
        if (receiver_get(&p->s->r, i, &x) != 0)
            continue;
        found = x.event && strcmp(x.event, "scheduled") == 0 && x.body &&
                strstr(x.body, p->webhook_id) && strstr(x.body, "\"mode\":\"simulated\"");
        received_free(&x);
    }
    return found;
}

Test(api, a_webhook_made_through_the_api_is_verified_tested_subscribed_and_delivered, .timeout = 60)
{
    struct scenario s;
    struct daemon d;
    char body[1024], id[64], path[160];
    scenario_start(&s,
                   &(struct scenario_opts){.extra = ADMIN_PORT0, .delivery = "{spread: [0s, 0s]}"});
    daemon_start(&d, s.config, ADMIN, NULL);
    snprintf(body, sizeof body,
             "{\"name\":\"every-second\",\"callbackUri\":\"http://127.0.0.1:%u/hook\","
             "\"cadence\":{\"policy\":\"interval\",\"every\":\"1s\"},\"endpoints\":[\"/odometer\"],"
             "\"sinks\":[\"callback\"]}",
             s.r.port);
    struct http_reply r = post(&d, "/api/v1/webhooks", body);
    cr_assert_eq(r.status, 201, "%s", r.body);
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    http_reply_free(&r);

    /* verify and test go through the running engine's courier */
    snprintf(path, sizeof path, "/api/v1/webhooks/%s/verify", id);
    r = post(&d, path, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(json_is_true(json_object_get(r.json, "verified")), "%s", r.body);
    cr_expect_str_eq(jstr(r.json, "state"), "active", "%s", r.body);
    http_reply_free(&r);
    snprintf(path, sizeof path, "/api/v1/webhooks/%s/test", id);
    r = post(&d, path, NULL);
    cr_expect_eq(r.status, 200, "%s", r.body);
    json_t *sink = json_array_get(json_object_get(r.json, "sinks"), 0);
    cr_expect(json_is_true(json_object_get(sink, "ok")), "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(sink, "httpStatus")), 200, "%s", r.body);
    char test_id[64];
    snprintf(test_id, sizeof test_id, "%s", jstr(sink, "deliveryId"));
    http_reply_free(&r);
    snprintf(path, sizeof path, "/api/v1/deliveries/%s", test_id);
    r = get(&d, path);
    cr_expect_str_eq(jstr(r.json, "kind"), "test", "the test is in the ledger: %s", r.body);
    cr_expect_str_eq(jstr(r.json, "state"), "delivered", "%s", r.body);
    http_reply_free(&r);

    /* a failing verify says why, sink by sink, with 502 */
    receiver_verify_rule(&s.r, (struct receiver_rule){.mode = RECV_WRONG_CHALLENGE});
    snprintf(path, sizeof path, "/api/v1/webhooks/%s/verify", id);
    r = post(&d, path, NULL);
    cr_expect_eq(r.status, 502, "%s", r.body);
    cr_expect(
        strstr(jstr(json_array_get(json_object_get(json_object_get(r.json, "details"), "sinks"), 0),
                    "error"),
               "challenge") != NULL,
        "%s", r.body);
    http_reply_free(&r);

    /* subscribed through the API, delivered on the next tick */
    snprintf(path, sizeof path, "/api/v1/webhooks/%s/subscriptions", id);
    r = post(&d, path,
             "{\"subscriptions\":[{\"vehicleId\":\"car-1\"},{\"vehicleId\":\"bad id\"}]}");
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(r.json, "subscribed")), 1, "%s", r.body);
    cr_expect_eq(json_integer_value(json_object_get(r.json, "failed")), 1, "%s", r.body);
    http_reply_free(&r);
    struct payload_of p = {.s = &s, .webhook_id = id};
    cr_expect(poll_until(payload_of_webhook, &p, 15000), "a payload of the new webhook arrives");
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}

Test(api, the_page_is_served_with_a_strict_policy_and_no_cors)
{
    struct scenario s;
    struct daemon d;
    scenario_start(&s, &(struct scenario_opts){.extra = ADMIN_PORT0});
    daemon_start(&d, s.config, ADMIN, NULL);
    struct http_reply r = http_call(&d, "GET", "/", NULL, NULL, 0);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.headers, "Content-Type: text/html") != NULL, "%s", r.headers);
    cr_expect(strstr(r.headers, "script-src 'self'") && strstr(r.headers, "frame-ancestors 'none'"),
              "%s", r.headers);
    cr_expect(strstr(r.body, "<script src=\"/app.js\"") != NULL, "the script is a file");
    cr_expect(strstr(r.body, "<script>") == NULL, "no inline script");
    http_reply_free(&r);
    r = http_call(&d, "GET", "/app.js", NULL, NULL, 0);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "innerHTML") == NULL, "values are set as text, never as HTML");
    http_reply_free(&r);
    r = http_call(&d, "GET", "/api/v1/webhooks", ADMIN, NULL, 0);
    cr_expect(strstr(r.headers, "Access-Control-") == NULL, "no CORS: %s", r.headers);
    cr_expect(strstr(r.headers, "Content-Security-Policy: default-src 'none'") != NULL, "%s",
              r.headers);
    http_reply_free(&r);
    r = http_call(&d, "OPTIONS", "/api/v1/webhooks", NULL, NULL, 0);
    cr_expect_eq(r.status, 405, "no preflight is answered");
    cr_expect(strstr(r.headers, "Access-Control-") == NULL, "%s", r.headers);
    http_reply_free(&r);
    r = post(&d, "/api/v1/plan",
             "{\"cadence\":{\"policy\":\"daily\",\"at\":\"06:30\"},\"count\":3,"
             "\"from\":\"2030-03-01T07:00:00Z\"}");
    cr_expect_eq(json_array_size(json_object_get(r.json, "ticks")), 3, "%s", r.body);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(r.json, "ticks"), 0)),
                     "2030-03-02T06:30:00Z");
    http_reply_free(&r);
    r = post(&d, "/api/v1/plan", "{\"cadence\":{\"policy\":\"daily\",\"at\":\"25:00\"}}");
    cr_expect_eq(r.status, 400, "%s", r.body);
    cr_expect(strncmp(jstr(r.json, "field"), "cadence", 7) == 0, "%s", r.body);
    http_reply_free(&r);
    r = get(&d, "/api/v1/catalog");
    cr_expect(json_array_size(json_object_get(r.json, "endpoints")) > 10, "%s", r.body);
    cr_expect_str_eq(jstr(json_array_get(json_object_get(r.json, "sinks"), 0), "name"), "callback");
    http_reply_free(&r);
    cr_expect_eq(daemon_stop(&d), 0);
    scenario_stop(&s);
}
