/* The admin API's router and handlers. A request target is parsed strictly
 * before any route sees it: each path segment is percent-decoded on its own,
 * and a segment that decodes to a slash, a NUL, "." or ".." is refused, as is
 * a malformed escape or a query key given twice - so no encoding can reach a
 * route it does not name. Tokens are accepted only in the Authorization
 * header; a query string that carries one is refused (it would be logged by
 * every proxy on the way). */
#include "api.h"
#include "log.h"
#include "ops.h"
#include "scalar.h"
#include "sign.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SEGMENTS 12
#define MAX_QUERY 12
#define SEGMENT_MAX 512

struct api {
    struct config *c;
    struct ops ctx[API_CONTEXTS];
    int busy[API_CONTEXTS];
    pthread_mutex_t mu;
    pthread_cond_t freed;
};

/* A parsed request, as handlers see it. */
struct call {
    struct api *a;
    struct ops *o;
    const struct api_request *rq;
    struct api_response *rs;
    char *seg[MAX_SEGMENTS]; /* decoded path segments */
    size_t n_seg;
    char *qkey[MAX_QUERY], *qval[MAX_QUERY];
    size_t n_query;
    const char *param[3]; /* the route's {placeholders}, in order */
    size_t n_param;
    const char *bearer; /* the Authorization header's token, or NULL */
    int smartcar;       /* a /v2.0 route: Smartcar's error shape */
};

/* ---- responses --------------------------------------------------------------------------------
 */

static void respond_text(struct call *x, int status, const char *type, char *body, size_t len)
{
    free(x->rs->body);
    x->rs->status = status;
    x->rs->content_type = type;
    x->rs->body = body;
    x->rs->body_len = len;
}

/* Encodes j (stolen) as the response. */
static void respond(struct call *x, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!text) {
        text = strdup("{\"error\":\"internal\",\"message\":\"out of memory\"}");
        status = 500;
    }
    respond_text(x, status, "application/json", text, text ? strlen(text) : 0);
}

static const char *error_code(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "unauthorized";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 409:
        return "conflict";
    case 413:
        return "payload_too_large";
    case 415:
        return "unsupported_media_type";
    case 502:
        return "upstream_failed";
    case 503:
        return "unavailable";
    default:
        return "internal";
    }
}

/* Smartcar's v2 error: type, code, HTTP status, resolution. */
static void smartcar_kind(int status, const char **type, const char **code, const char **resolution)
{
    *resolution = NULL;
    switch (status) {
    case 401:
        *type = "AUTHENTICATION", *code = NULL, *resolution = "REAUTHENTICATE";
        break;
    case 404:
        *type = "RESOURCE_NOT_FOUND", *code = "PATH";
        break;
    case 400:
    case 409:
    case 413:
    case 415:
        *type = "VALIDATION", *code = "PARAMETER";
        break;
    case 502:
        *type = "UPSTREAM", *code = "UNKNOWN_ISSUE", *resolution = "RETRY_LATER";
        break;
    default:
        *type = "SERVER", *code = "INTERNAL", *resolution = "RETRY_LATER";
        break;
    }
}

static void fail_with(struct call *x, int status, const char *field, json_t *details,
                      const char *fmt, ...) MTR_PRINTF(5, 6);

static void fail_with(struct call *x, int status, const char *field, json_t *details,
                      const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j;
    if (x->smartcar) {
        const char *type, *code, *resolution;
        smartcar_kind(status, &type, &code, &resolution);
        j = json_pack("{s:s,s:o,s:s,s:s,s:i,s:s,s:{s:o}}", "type", type, "code",
                      code ? json_string(code) : json_null(), "description", msg, "docURL",
                      "https://smartcar.com/docs/errors/api-errors", "statusCode", status,
                      "requestId", x->rs->request_id, "resolution", "type",
                      resolution ? json_string(resolution) : json_null());
        json_decref(details);
    } else {
        j = json_pack("{s:s,s:s}", "error", error_code(status), "message", msg);
        if (field && *field)
            json_object_set_new(j, "field", json_string(field));
        if (details)
            json_object_set_new(j, "details", details);
    }
    if (status == 401)
        x->rs->www_authenticate = 1;
    respond(x, status, j);
}

static int http_status(int kind)
{
    switch (kind) {
    case OP_BAD_INPUT:
        return 400;
    case OP_UNAUTHORIZED:
        return 401;
    case OP_NOT_FOUND:
        return 404;
    case OP_CONFLICT:
        return 409;
    case OP_UPSTREAM:
        return 502;
    case OP_UNAVAILABLE:
        return 503;
    default:
        return 500;
    }
}

/* The face of an operation: its data with ok_status, or its error. */
static void answer(struct call *x, int rc, int ok_status, json_t *out, const struct op_error *err)
{
    if (rc == 0)
        return respond(x, ok_status, out);
    fail_with(x, http_status(err->kind), err->field, out, "%s", err->message);
}

/* ---- parsing the target ------------------------------------------------------------------------
 */

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL when malformed or when it
 * decodes to a NUL (or, in a path segment, a slash). */
static char *decode(const char *s, size_t n, int plus_is_space, int in_path)
{
    char *out = malloc(n + 1);
    size_t k = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        if (ch == '\0' || (in_path && ch == '/')) {
            free(out);
            return NULL;
        }
        out[k++] = ch;
    }
    out[k] = '\0';
    return out;
}

static void call_free(struct call *x)
{
    for (size_t i = 0; i < x->n_seg; i++)
        free(x->seg[i]);
    for (size_t i = 0; i < x->n_query; i++) {
        free(x->qkey[i]);
        free(x->qval[i]);
    }
}

/* Splits the target into decoded segments and query pairs; 0, or -1 after
 * answering 400 (or 404 for a path no route can match). */
static int parse_target(struct call *x)
{
    const char *t = x->rq->target ? x->rq->target : "";
    const char *q = strchr(t, '?'), *end = q ? q : t + strlen(t);
    if (*t != '/')
        return fail_with(x, 400, NULL, NULL, "the request target must start with /"), -1;
    for (const char *p = t + 1; p <= end;) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash ? slash : end;
        if (x->n_seg == MAX_SEGMENTS || stop - p > SEGMENT_MAX)
            return fail_with(x, 404, NULL, NULL, "no such route"), -1;
        if (stop == p && !slash)
            break; /* "/" itself, or a trailing slash */
        char *seg = decode(p, (size_t)(stop - p), 0, 1);
        if (!seg || strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0 || (stop == p && slash)) {
            free(seg);
            return fail_with(x, 400, NULL, NULL,
                             "bad path: empty, '.' or '..' segments, encoded slashes and "
                             "malformed escapes are refused"),
                   -1;
        }
        x->seg[x->n_seg++] = seg;
        if (!slash)
            break;
        p = slash + 1;
    }
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&'), *stop = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (stop > p) {
            if (x->n_query == MAX_QUERY)
                return fail_with(x, 400, NULL, NULL, "too many query parameters"), -1;
            char *k = decode(p, (size_t)((eq ? eq : stop) - p), 1, 0);
            char *v = eq ? decode(eq + 1, (size_t)(stop - eq - 1), 1, 0) : strdup("");
            x->qkey[x->n_query] = k;
            x->qval[x->n_query++] = v;
            if (!k || !v)
                return fail_with(x, 400, NULL, NULL, "malformed escape in the query string"), -1;
            for (size_t i = 0; i + 1 < x->n_query; i++)
                if (strcmp(x->qkey[i], k) == 0)
                    return fail_with(x, 400, k, NULL, "query parameter '%s' is given twice", k), -1;
        }
        p = amp ? amp + 1 : stop;
    }
    return 0;
}

static const char *query(const struct call *x, const char *key)
{
    for (size_t i = 0; i < x->n_query; i++)
        if (strcmp(x->qkey[i], key) == 0)
            return x->qval[i];
    return NULL;
}

/* ---- the route table
 * ------------------------------------------------------------------------------ */

enum auth {
    AUTH_NONE,
    AUTH_ADMIN,
    AUTH_METRICS,    /* admin when admin.metrics_auth is set */
    AUTH_BEARER_ANY, /* the handler judges the bearer (Smartcar routes) */
};

struct route {
    const char *method;
    const char *path; /* segments; {name} captures one */
    int auth;
    const char *query; /* allowed query keys, comma-separated */
    void (*handle)(struct call *x);
};

static int json_body(struct call *x, json_t **out, int optional)
{
    json_error_t je;
    *out = NULL;
    if (x->rq->body_len == 0 && optional)
        return 0;
    if (x->rq->body_len == 0)
        return fail_with(x, 400, "", NULL, "this route takes a JSON body"), -1;
    *out = json_loadb(x->rq->body, x->rq->body_len, JSON_REJECT_DUPLICATES, &je);
    if (!*out)
        return fail_with(x, 400, "", NULL, "malformed JSON at line %d, column %d: %s", je.line,
                         je.column, je.text),
               -1;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return fail_with(x, 400, "", NULL, "the body must be a JSON object"), -1;
    }
    return 0;
}

static int parse_count(struct call *x, const char *key, size_t dflt, size_t max, size_t *out)
{
    const char *v = query(x, key);
    int64_t n;
    *out = dflt;
    if (!v)
        return 0;
    if (parse_int64(v, &n) != 0 || n < 1 || (uint64_t)n > max)
        return fail_with(x, 400, key, NULL, "%s must be a whole number from 1 to %zu", key, max),
               -1;
    *out = (size_t)n;
    return 0;
}

static int parse_page(struct call *x, struct page *p)
{
    p->cursor = query(x, "cursor");
    return parse_count(x, "limit", 100, 1000, &p->limit);
}

static int parse_time(struct call *x, const char *key, mtr_time *out)
{
    const char *v = query(x, key);
    *out = 0;
    if (v && parse_iso8601(v, out) != 0)
        return fail_with(x, 400, key, NULL,
                         "%s: want an instant like 2030-03-01T15:45:00Z (UTC, 1970 to 9999)", key),
               -1;
    return 0;
}

/* ---- handlers
 * --------------------------------------------------------------------------------------- */

static void h_health(struct call *x)
{
    respond(x, 200, json_pack("{s:s}", "status", "alive"));
}

static void h_ready(struct call *x)
{
    struct op_error err;
    if (ops_ready(x->o, &err) != 0)
        return fail_with(x, 503, NULL, NULL, "not ready: %s", err.message);
    respond(x, 200, json_pack("{s:s}", "status", "ready"));
}

static void h_openapi(struct call *x)
{
    char *copy = malloc(api_openapi_json_len + 1);
    if (copy)
        memcpy(copy, api_openapi_json, api_openapi_json_len + 1);
    respond_text(x, copy ? 200 : 500, "application/json", copy, copy ? api_openapi_json_len : 0);
    x->rs->cache_control = "public, max-age=300";
}

/* The dashboard: static files, compiled in; the page asks for the token. */
#define PAGE_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src "        \
    "'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"

static void serve_file(struct call *x, const char *data, size_t len, const char *type)
{
    char *copy = malloc(len + 1);
    if (copy)
        memcpy(copy, data, len + 1);
    respond_text(x, copy ? 200 : 500, type, copy, copy ? len : 0);
    x->rs->csp = PAGE_CSP;
    x->rs->cache_control = "no-cache";
}

static void h_page(struct call *x)
{
    serve_file(x, web_index_html, web_index_html_len, "text/html; charset=utf-8");
}

static void h_page_js(struct call *x)
{
    serve_file(x, web_app_js, web_app_js_len, "text/javascript; charset=utf-8");
}

static void h_page_css(struct call *x)
{
    serve_file(x, web_app_css, web_app_css_len, "text/css; charset=utf-8");
}

/* Browsers ask for it; there is none (204, so nothing is logged as missing). */
static void h_favicon(struct call *x)
{
    respond_text(x, 204, "image/x-icon", strdup(""), 0);
    x->rs->cache_control = "public, max-age=86400";
}

static void h_catalog(struct call *x)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = ops_catalog(x->o, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_cadence_preview(struct call *x)
{
    json_t *body, *out = NULL;
    struct op_error err;
    int64_t count = 5;
    mtr_time from = 0;
    if (json_body(x, &body, 0) != 0)
        return;
    json_t *c = json_object_get(body, "count"), *f = json_object_get(body, "from");
    if (c && (!json_is_integer(c) || (count = json_integer_value(c)) < 1 || count > 100)) {
        json_decref(body);
        return fail_with(x, 400, "count", NULL, "count: want a whole number from 1 to 100");
    }
    if (f && (!json_is_string(f) || parse_iso8601(json_string_value(f), &from) != 0)) {
        json_decref(body);
        return fail_with(x, 400, "from", NULL, "from: want an instant like 2030-03-01T15:45:00Z");
    }
    json_t *cadence = json_object_get(body, "cadence");
    if (!json_is_object(cadence)) {
        json_decref(body);
        return fail_with(x, 400, "cadence", NULL,
                         "cadence: want an object like {\"policy\": \"hourly\"}");
    }
    int rc = ops_cadence_preview(x->o, cadence, from, (size_t)count, &out, &err);
    answer(x, rc, 200, out, &err);
    json_decref(body);
}

static void h_metrics(struct call *x)
{
    struct op_error err;
    char *text = NULL;
    if (ops_metrics(x->o, &text, &err) != 0)
        return answer(x, -1, 0, NULL, &err);
    respond_text(x, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
}

static void h_status(struct call *x)
{
    struct op_error err;
    json_t *out = NULL;
    int rc = ops_status(x->o, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_webhooks_list(struct call *x)
{
    struct page p;
    struct op_error err;
    json_t *out = NULL;
    if (parse_page(x, &p) == 0) {
        int rc = ops_webhook_list(x->o, &p, &out, &err);
        answer(x, rc, 200, out, &err);
    }
}

static void h_webhook_create(struct call *x)
{
    json_t *body, *out = NULL;
    struct op_error err;
    if (json_body(x, &body, 0) != 0)
        return;
    int rc = ops_webhook_create(x->o, body, &out, &err);
    answer(x, rc, 201, out, &err);
    json_decref(body);
}

/* A route whose whole work is one operation on the object named in its path. */
typedef int (*op_on_id)(struct ops *o, const char *id, json_t **out, struct op_error *err);

static void on_id(struct call *x, op_on_id op)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = op(x->o, x->param[0], &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_webhook_get(struct call *x)
{
    on_id(x, ops_webhook_get);
}

static void h_webhook_patch(struct call *x)
{
    json_t *body, *out = NULL;
    struct op_error err;
    if (json_body(x, &body, 0) != 0)
        return;
    int rc = ops_webhook_update(x->o, x->param[0], body, &out, &err);
    answer(x, rc, 200, out, &err);
    json_decref(body);
}

static void h_webhook_delete(struct call *x)
{
    on_id(x, ops_webhook_delete);
}

static void h_verify(struct call *x)
{
    on_id(x, ops_webhook_verify);
}

static void h_test(struct call *x)
{
    on_id(x, ops_webhook_test);
}

static void h_enable(struct call *x)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = ops_webhook_enable(x->o, x->param[0], 1, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_disable(struct call *x)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = ops_webhook_enable(x->o, x->param[0], 0, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_webhook_replay(struct call *x)
{
    json_t *body, *out = NULL;
    struct op_error err;
    if (json_body(x, &body, 1) != 0)
        return;
    json_t *st = json_object_get(body, "state");
    const char *name = st ? json_string_value(st) : "failed";
    int state = delivery_state_parse(name);
    const char *key;
    json_t *v;
    json_object_foreach(body, key, v) if (strcmp(key, "state") != 0)
    {
        fail_with(x, 400, key, NULL, "unknown field '%s' (replay takes {\"state\"})", key);
        json_decref(body);
        return;
    }
    json_decref(body);
    if (state != MTR_DELIVERY_FAILED && state != MTR_DELIVERY_DELIVERED)
        return fail_with(x, 400, "state", NULL, "state: want \"failed\" or \"delivered\"");
    int rc = ops_replay(x->o, NULL, x->param[0], state, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_plan(struct call *x)
{
    size_t count;
    mtr_time from;
    json_t *out = NULL;
    struct op_error err;
    if (parse_count(x, "count", 10, 1000, &count) != 0 || parse_time(x, "from", &from) != 0)
        return;
    int rc = ops_webhook_plan(x->o, x->param[0], from, count, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_subscriptions(struct call *x)
{
    struct page p;
    json_t *out = NULL;
    struct op_error err;
    if (parse_page(x, &p) == 0) {
        int rc = ops_subscriptions_list(x->o, x->param[0], query(x, "vehicle"), &p, &out, &err);
        answer(x, rc, 200, out, &err);
    }
}

static const char *body_string(struct call *x, json_t *body, const char *key, int *bad)
{
    json_t *v = json_object_get(body, key);
    if (v && !json_is_string(v)) {
        fail_with(x, 400, key, NULL, "%s must be a string", key);
        *bad = 1;
    }
    return json_string_value(v);
}

/* One subscription from a JSON object; 0, or -1 after answering 400. */
static int sub_from_json(struct call *x, json_t *item, struct sub_request *r)
{
    static const char *const known[] = {"vehicleId", "source", "accessToken", "refreshToken"};
    const char *key;
    json_t *v;
    int bad = 0;
    if (!json_is_object(item))
        return fail_with(x, 400, "", NULL, "each subscription is an object {\"vehicleId\", ...}"),
               -1;
    json_object_foreach(item, key, v)
    {
        size_t k = 0;
        while (k < 4 && strcmp(key, known[k]) != 0)
            k++;
        if (k == 4)
            return fail_with(x, 400, key, NULL,
                             "unknown field '%s' (vehicleId, source, accessToken, refreshToken)",
                             key),
                   -1;
    }
    memset(r, 0, sizeof *r);
    r->vehicle_id = body_string(x, item, "vehicleId", &bad);
    r->source = bad ? NULL : body_string(x, item, "source", &bad);
    r->access_token = bad ? NULL : body_string(x, item, "accessToken", &bad);
    r->refresh_token = bad ? NULL : body_string(x, item, "refreshToken", &bad);
    if (!bad && !r->vehicle_id)
        return fail_with(x, 400, "vehicleId", NULL, "vehicleId is required"), -1;
    return bad ? -1 : 0;
}

static void h_subscribe(struct call *x)
{
    json_t *body, *out = NULL;
    struct op_error err;
    if (json_body(x, &body, 0) != 0)
        return;
    json_t *many = json_object_get(body, "subscriptions");
    if (many) { /* {"subscriptions": [{...}, ...]}: many in one transaction */
        size_t n = json_array_size(many), i;
        struct sub_request *reqs = calloc(n ? n : 1, sizeof *reqs);
        json_t *item;
        int ok = reqs && json_is_array(many) && json_object_size(body) == 1 && n > 0 && n <= 10000;
        if (!ok)
            fail_with(x, 400, "subscriptions", NULL,
                      "subscriptions must be a list of 1 to 10000 objects, alone in the body");
        json_array_foreach(many, i, item) if (ok && sub_from_json(x, item, &reqs[i]) != 0) ok = 0;
        if (ok) {
            int rc = ops_subscribe(x->o, x->param[0], reqs, n, &out, &err);
            answer(x, rc, 200, out, &err);
        }
        free(reqs);
    } else {
        struct sub_request r;
        if (sub_from_json(x, body, &r) == 0) {
            int rc = ops_subscribe_one(x->o, x->param[0], &r, &out, &err);
            answer(x, rc, 201, out, &err);
        }
    }
    json_decref(body);
}

static void h_unsubscribe(struct call *x)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = ops_unsubscribe(x->o, x->param[0], x->param[1], &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_deliveries(struct call *x)
{
    struct page p;
    struct delivery_filter f = {.webhook = query(x, "webhook"), .state = -1, .with_attempts = 0};
    const char *state = query(x, "state"), *attempts = query(x, "attempts");
    if (attempts && strcmp(attempts, "true") != 0 && strcmp(attempts, "false") != 0)
        return fail_with(x, 400, "attempts", NULL, "attempts: want true or false");
    f.with_attempts = attempts && strcmp(attempts, "true") == 0;
    json_t *out = NULL;
    struct op_error err;
    if (state && (f.state = delivery_state_parse(state)) < 0)
        return fail_with(x, 400, "state", NULL, "state: want pending, delivered or failed");
    if (parse_time(x, "from", &f.from) != 0 || parse_time(x, "to", &f.to) != 0 ||
        parse_page(x, &p) != 0)
        return;
    int rc = ops_deliveries_list(x->o, &f, &p, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_delivery(struct call *x)
{
    on_id(x, ops_delivery_get);
}

static void h_delivery_replay(struct call *x)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = ops_replay(x->o, x->param[0], NULL, MTR_DELIVERY_FAILED, &out, &err);
    answer(x, rc, 200, out, &err);
}

static void h_vehicles(struct call *x)
{
    struct page p;
    const char *v = query(x, "needsReauthentication");
    json_t *out = NULL;
    struct op_error err;
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
        return fail_with(x, 400, "needsReauthentication", NULL,
                         "needsReauthentication: want true or false");
    if (parse_page(x, &p) == 0) {
        int rc = ops_vehicles_list(x->o, v && strcmp(v, "true") == 0, &p, &out, &err);
        answer(x, rc, 200, out, &err);
    }
}

/* POST /v2.0/vehicles/{vehicle_id}/webhooks/{webhook_id}: Smartcar's SDKs send
 * no body; an optional {"refreshToken"} keeps a live vehicle connected. */
static void h_sc_subscribe(struct call *x)
{
    json_t *body, *out = NULL;
    struct op_error err;
    int bad = 0;
    if (json_body(x, &body, 1) != 0)
        return;
    const char *refresh = body ? body_string(x, body, "refreshToken", &bad) : NULL;
    if (!bad) {
        int rc = ops_sc_subscribe(x->o, x->param[1], x->param[0], x->bearer, refresh, &out, &err);
        answer(x, rc, 200, out, &err);
    }
    json_decref(body);
}

static void h_sc_unsubscribe(struct call *x)
{
    json_t *out = NULL;
    struct op_error err;
    int rc = ops_sc_unsubscribe(x->o, x->param[1], x->param[0], x->bearer, &out, &err);
    answer(x, rc, 200, out, &err);
}

static const struct route routes[] = {
    {"POST", "/v2.0/vehicles/{vehicle_id}/webhooks/{webhook_id}", AUTH_BEARER_ANY, "",
     h_sc_subscribe},
    {"DELETE", "/v2.0/vehicles/{vehicle_id}/webhooks/{webhook_id}", AUTH_BEARER_ANY, "",
     h_sc_unsubscribe},
    {"GET", "/api/v1/webhooks", AUTH_ADMIN, "cursor,limit", h_webhooks_list},
    {"POST", "/api/v1/webhooks", AUTH_ADMIN, "", h_webhook_create},
    {"GET", "/api/v1/webhooks/{id}", AUTH_ADMIN, "", h_webhook_get},
    {"PATCH", "/api/v1/webhooks/{id}", AUTH_ADMIN, "", h_webhook_patch},
    {"DELETE", "/api/v1/webhooks/{id}", AUTH_ADMIN, "", h_webhook_delete},
    {"POST", "/api/v1/webhooks/{id}/verify", AUTH_ADMIN, "", h_verify},
    {"POST", "/api/v1/webhooks/{id}/test", AUTH_ADMIN, "", h_test},
    {"POST", "/api/v1/webhooks/{id}/enable", AUTH_ADMIN, "", h_enable},
    {"POST", "/api/v1/webhooks/{id}/disable", AUTH_ADMIN, "", h_disable},
    {"POST", "/api/v1/webhooks/{id}/replay", AUTH_ADMIN, "", h_webhook_replay},
    {"GET", "/api/v1/webhooks/{id}/plan", AUTH_ADMIN, "count,from", h_plan},
    {"GET", "/api/v1/webhooks/{id}/subscriptions", AUTH_ADMIN, "cursor,limit,vehicle",
     h_subscriptions},
    {"POST", "/api/v1/webhooks/{id}/subscriptions", AUTH_ADMIN, "", h_subscribe},
    {"DELETE", "/api/v1/webhooks/{id}/subscriptions/{vehicle_id}", AUTH_ADMIN, "", h_unsubscribe},
    {"GET", "/api/v1/deliveries", AUTH_ADMIN, "webhook,state,from,to,cursor,limit,attempts",
     h_deliveries},
    {"GET", "/api/v1/deliveries/{id}", AUTH_ADMIN, "", h_delivery},
    {"POST", "/api/v1/deliveries/{id}/replay", AUTH_ADMIN, "", h_delivery_replay},
    {"GET", "/api/v1/vehicles", AUTH_ADMIN, "needsReauthentication,cursor,limit", h_vehicles},
    {"GET", "/api/v1/status", AUTH_ADMIN, "", h_status},
    {"GET", "/api/v1/openapi.json", AUTH_NONE, "", h_openapi},
    {"GET", "/metrics", AUTH_METRICS, "", h_metrics},
    {"GET", "/healthz", AUTH_NONE, "", h_health},
    {"GET", "/readyz", AUTH_NONE, "", h_ready},
    {"GET", "/api/v1/catalog", AUTH_ADMIN, "", h_catalog},
    {"POST", "/api/v1/plan", AUTH_ADMIN, "", h_cadence_preview},
    {"GET", "/", AUTH_NONE, "", h_page},
    {"GET", "/app.js", AUTH_NONE, "", h_page_js},
    {"GET", "/app.css", AUTH_NONE, "", h_page_css},
    {"GET", "/favicon.ico", AUTH_NONE, "", h_favicon},
};

#define N_ROUTES (sizeof routes / sizeof *routes)

size_t api_route_list(struct api_route_info *out, size_t max)
{
    for (size_t i = 0; i < N_ROUTES && i < max; i++)
        out[i] = (struct api_route_info){routes[i].method, routes[i].path};
    return N_ROUTES;
}

/* Whether the route's path matches the request's segments; captures params. */
static int path_matches(const struct route *r, struct call *x)
{
    const char *p = r->path + 1;
    size_t i = 0;
    x->n_param = 0;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (i == x->n_seg)
            return 0;
        if (p[0] == '{') {
            if (x->n_param < 3)
                x->param[x->n_param++] = x->seg[i];
        } else if (strlen(x->seg[i]) != len || strncmp(x->seg[i], p, len) != 0) {
            return 0;
        }
        i++;
        p += len + (slash != NULL);
    }
    return i == x->n_seg;
}

static int query_allowed(const struct route *r, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = r->query; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, key, n) == 0)
            return 1;
        p += len + (comma != NULL);
    }
    return 0;
}

/* The bearer token of the Authorization header, or NULL. */
static const char *bearer(const char *header)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0)
        return NULL;
    header += 7;
    while (*header == ' ')
        header++;
    return *header ? header : NULL;
}

static int authorized(struct call *x, const struct route *r)
{
    int need = r->auth == AUTH_ADMIN || (r->auth == AUTH_METRICS && x->a->c->admin.metrics_auth);
    if (!need)
        return 1;
    if (!x->bearer) {
        fail_with(x, 401, NULL, NULL,
                  "this route needs the admin token: Authorization: Bearer TOKEN");
        return 0;
    }
    if (!ops_secret_equal(x->bearer, x->a->c->admin.token)) {
        fail_with(x, 401, NULL, NULL, "the admin token is wrong");
        return 0;
    }
    return 1;
}

static int refuse_query_tokens(struct call *x)
{
    static const char *const secretish[] = {"token",         "access_token", "accessToken", "auth",
                                            "authorization", "api_key",      "apiKey"};
    for (size_t i = 0; i < x->n_query; i++)
        for (size_t k = 0; k < sizeof secretish / sizeof *secretish; k++)
            if (strcasecmp(x->qkey[i], secretish[k]) == 0) {
                fail_with(x, 400, x->qkey[i], NULL,
                          "tokens are refused in the query string (proxies and logs keep URLs); "
                          "send Authorization: Bearer TOKEN");
                return 1;
            }
    return 0;
}

/* Finds the route for the call, answering 404 or 405 when there is none. */
static const struct route *route_for(struct call *x)
{
    char allow[48] = "";
    for (size_t i = 0; i < N_ROUTES; i++) {
        if (!path_matches(&routes[i], x))
            continue;
        if (strcmp(routes[i].method, x->rq->method) == 0)
            return &routes[i];
        size_t used = strlen(allow);
        snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", routes[i].method);
    }
    if (allow[0]) {
        snprintf(x->rs->allow, sizeof x->rs->allow, "%s", allow);
        fail_with(x, 405, NULL, NULL, "method %.16s is not allowed here (allowed: %s)",
                  x->rq->method, allow);
    } else {
        fail_with(x, 404, NULL, NULL, "no such route");
    }
    return NULL;
}

/* ---- contexts and the entry point
 * ---------------------------------------------------------------------- */

static struct ops *borrow(struct api *a, int *slot)
{
    pthread_mutex_lock(&a->mu);
    for (;;) {
        for (int i = 0; i < API_CONTEXTS; i++)
            if (!a->busy[i]) {
                a->busy[i] = 1;
                *slot = i;
                pthread_mutex_unlock(&a->mu);
                return &a->ctx[i];
            }
        pthread_cond_wait(&a->freed, &a->mu);
    }
}

static void give_back(struct api *a, int slot)
{
    pthread_mutex_lock(&a->mu);
    a->busy[slot] = 0;
    pthread_cond_signal(&a->freed);
    pthread_mutex_unlock(&a->mu);
}

void api_handle(struct api *a, const struct api_request *rq, struct api_response *rs)
{
    struct call x = {.a = a, .rq = rq, .rs = rs};
    memset(rs, 0, sizeof *rs);
    x.bearer = bearer(rq->authorization);
    int slot = -1;
    if (parse_target(&x) != 0)
        goto out;
    x.smartcar = x.n_seg > 0 && strcmp(x.seg[0], "v2.0") == 0;
    if (x.smartcar)
        uuid_random(rs->request_id);
    const struct route *r = route_for(&x);
    if (!r || refuse_query_tokens(&x) || !authorized(&x, r))
        goto out;
    for (size_t i = 0; i < x.n_query; i++)
        if (!query_allowed(r, x.qkey[i])) {
            fail_with(&x, 400, x.qkey[i], NULL,
                      "unknown query parameter '%.64s' (this route takes %s)", x.qkey[i],
                      r->query[0] ? r->query : "none");
            goto out;
        }
    if (rq->body_too_large) {
        fail_with(&x, 413, NULL, NULL, "the body is larger than %u bytes", API_MAX_BODY);
        goto out;
    }
    if (r->handle != h_health && r->handle != h_openapi && r->handle != h_page &&
        r->handle != h_page_js && r->handle != h_page_css && r->handle != h_favicon)
        x.o = borrow(a, &slot);
    r->handle(&x);
out:
    if (slot >= 0)
        give_back(a, slot);
    call_free(&x);
    if (!rs->body)
        respond(&x, 500, json_pack("{s:s,s:s}", "error", "internal", "message", "no answer"));
}

void api_response_free(struct api_response *rs)
{
    free(rs->body);
    rs->body = NULL;
}

struct api *api_create(struct config *c, struct clock *clk, struct engine *e, struct diag *d)
{
    struct api *a = calloc(1, sizeof *a);
    struct op_error err;
    if (!a || pthread_mutex_init(&a->mu, NULL) != 0 || pthread_cond_init(&a->freed, NULL) != 0) {
        free(a);
        diag_set(d, "out of memory");
        return NULL;
    }
    a->c = c;
    for (int i = 0; i < API_CONTEXTS; i++)
        if (ops_open(&a->ctx[i], c, clk, OPS_DAEMON, e, &err) != 0) {
            diag_set(d, "%s", err.message);
            for (int k = 0; k <= i; k++)
                ops_close(&a->ctx[k]);
            pthread_cond_destroy(&a->freed);
            pthread_mutex_destroy(&a->mu);
            free(a);
            return NULL;
        }
    return a;
}

void api_destroy(struct api *a)
{
    if (!a)
        return;
    for (int i = 0; i < API_CONTEXTS; i++)
        ops_close(&a->ctx[i]);
    pthread_cond_destroy(&a->freed);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
