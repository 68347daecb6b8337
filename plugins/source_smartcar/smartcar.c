/* Source `smartcar`: live vehicles through Smartcar's API. Per vehicle, one
 * POST {api_url}/vehicles/{id}/batch with the webhook's endpoints, the
 * SC-Unit-System header and the vehicle's bearer token; each sub-response
 * (code, body, headers) becomes the payload's data element unchanged.
 *
 * Tokens: an access token that expires within a minute, or that the API
 * refuses with 401, is refreshed at auth_url (Basic client credentials,
 * grant_type=refresh_token). The new pair goes back to the core, which stores
 * both before fetching again with them - a token is never used before it is
 * stored. A refused refresh marks the vehicle as needing re-authentication,
 * delivered as an AUTHENTICATION error element.
 *
 * Errors (reference section 6): 409 VEHICLE_STATE, 5xx/UPSTREAM and transport
 * errors are transient (the core tries the next 15-minute slot); 429 waits for
 * retry-after; 403 and other 4xx are final error elements. An app-wide token
 * bucket keeps a fleet's tick under the application's rate limit; in the
 * daemon it is the ledger's, one budget for every node. Transfers
 * run on one libcurl multi handle driven from poll(), behind the SSRF guard. */
#include <metronome/metronome.h>
#include <metronome/netguard.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define RESPONSE_MAX (4 * 1024 * 1024)

enum req_kind {
    REQ_BATCH,
    REQ_REFRESH,
};

struct buf {
    char *p;
    size_t len;
};

struct sc;

struct req {
    struct sc *s;
    int kind;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *vehicle_id, *access, *refresh;
    char **endpoints;
    size_t n_endpoints;
    int units;
    mtr_fetch_done_fn done;
    void *core, *cookie;
    struct buf response;
    int64_t retry_after_s;
    char refused[256];
    char curl_error[CURL_ERROR_SIZE];
    struct req *next;
};

struct sc {
    const struct mtr_host_api *host;
    mtr_ctx *ctx;
    const char *api_url, *auth_url, *client_id, *client_secret, *ca_file;
    const char *proxy; /* NULL: direct; the environment's proxies are never used */
    int64_t timeout_ms, concurrency, per_minute, burst;
    int allow_private, test_mode;
    CURLM *multi;
    int in_flight;
    struct req *queue, *queue_tail;
    double bucket;
    mtr_time bucket_at;
    int started;
};

static const char *const modes[] = {"live", "test", NULL};

/* ---- helpers ------------------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t n, void *userdata)
{
    struct buf *b = userdata;
    size_t len = size * n;
    if (b->len + len > RESPONSE_MAX)
        return 0; /* too large: the transfer fails */
    char *p = realloc(b->p, b->len + len + 1);
    if (!p)
        return 0;
    memcpy(p + b->len, ptr, len);
    b->p = p;
    b->len += len;
    p[b->len] = '\0';
    return len;
}

static size_t on_header(char *h, size_t size, size_t n, void *userdata)
{
    struct req *r = userdata;
    size_t len = size * n;
    int64_t secs;
    if (len > 12 && strncasecmp(h, "retry-after:", 12) == 0 &&
        mtr_parse_retry_after(h + 12, len - 12, r->s->host->now(r->s->ctx), &secs) == 0)
        r->retry_after_s = secs;
    return len;
}

static curl_socket_t guarded_open(void *clientp, curlsocktype purpose,
                                  struct curl_sockaddr *address)
{
    struct req *r = clientp;
    (void)purpose;
    const char *why =
        r->s->allow_private ? NULL : mtr_address_private((struct sockaddr *)&address->addr);
    if (why) {
        snprintf(r->refused, sizeof r->refused,
                 "refused to connect: %s (set allow_private_networks: true to allow)", why);
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

static void setup_easy(struct sc *s, struct req *r, const char *url)
{
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* "" keeps libcurl from taking http_proxy/HTTPS_PROXY from the environment */
    curl_easy_setopt(e, CURLOPT_PROXY, s->proxy ? s->proxy : "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, guarded_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->response);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->curl_error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "metronome-smartcar/1.0");
    if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
}

static void req_free(struct req *r)
{
    if (!r)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->vehicle_id);
    free(r->access);
    free(r->refresh);
    for (size_t i = 0; i < r->n_endpoints; i++)
        free(r->endpoints[i]);
    free(r->endpoints);
    free(r->response.p);
    free(r);
}

/* ---- results ------------------------------------------------------------------------------ */

/* An error element per endpoint with the given body (a JSON object text). */
static char *error_elements(const struct req *r, int code, const char *body_json)
{
    size_t cap = 64 + r->n_endpoints * (strlen(body_json) + 128), len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    len += (size_t)snprintf(out + len, cap - len, "[");
    for (size_t i = 0; i < r->n_endpoints; i++)
        len += (size_t)snprintf(out + len, cap - len,
                                "%s{\"path\":\"%s\",\"code\":%d,\"body\":%s,"
                                "\"headers\":{\"content-type\":\"application/json\"}}",
                                i ? "," : "", r->endpoints[i], code, body_json);
    snprintf(out + len, cap - len, "]");
    return out;
}

static void finish(struct req *r, struct mtr_fetch_result *res)
{
    res->cookie = r->cookie;
    r->done(r->core, res);
}

/* The body of an error answer as an object text, or a standard one. */
static char *error_body(const struct req *r, int code, const char *type, const char *description)
{
    json_error_t je;
    json_t *v = r->response.p ? json_loadb(r->response.p, r->response.len, 0, &je) : NULL;
    char *text = NULL;
    if (json_is_object(v))
        text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (text)
        return text;
    json_t *o = json_pack("{s:s,s:n,s:s,s:n,s:i,s:n,s:{s:s}}", "type", type, "code", "description",
                          description, "docURL", "statusCode", code, "requestId", "resolution",
                          "type", code == 429 ? "RETRY_LATER" : "CONTACT_SUPPORT");
    text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return text;
}

static void finish_error(struct req *r, int status, int code, const char *type,
                         const char *description)
{
    char *body = error_body(r, code, type, description);
    char *data = body ? error_elements(r, code, body) : NULL;
    struct mtr_fetch_result res = {.status = status,
                                   .data_json = data,
                                   .data_len = data ? strlen(data) : 0,
                                   .error = description,
                                   .retry_after_s = r->retry_after_s};
    finish(r, &res);
    free(data);
    free(body);
}

static void finish_reauth(struct req *r)
{
    static const char body[] =
        "{\"type\":\"AUTHENTICATION\",\"code\":null,\"description\":\"The vehicle's refresh token "
        "was rejected; its owner must connect it again through Smartcar Connect.\","
        "\"docURL\":\"https://smartcar.com/docs/errors/api-errors/authentication-errors\","
        "\"statusCode\":401,\"requestId\":null,\"resolution\":{\"type\":\"REAUTHENTICATE\"}}";
    char *data = error_elements(r, 401, body);
    struct mtr_fetch_result res = {.status = MTR_OK,
                                   .data_json = data,
                                   .data_len = data ? strlen(data) : 0,
                                   .error = "refresh token rejected: re-authentication needed",
                                   .needs_reauth = 1,
                                   .retry_after_s = -1};
    finish(r, &res);
    free(data);
}

/* A 200 batch answer: its responses, transient if any of them is. */
static void finish_batch(struct req *r)
{
    json_error_t je;
    json_t *v = json_loadb(r->response.p ? r->response.p : "", r->response.len,
                           JSON_DECODE_INT_AS_REAL, &je);
    json_t *responses = json_object_get(v, "responses");
    if (!json_is_array(responses)) { /* malformed: hand it over as is, the core says so */
        struct mtr_fetch_result res = {.status = MTR_OK,
                                       .data_json = r->response.p ? r->response.p : "",
                                       .data_len = r->response.len,
                                       .retry_after_s = -1};
        finish(r, &res);
        json_decref(v);
        return;
    }
    int transient = 0;
    int64_t retry_after = -1;
    size_t i;
    json_t *sub;
    json_array_foreach(responses, i, sub)
    {
        double code = json_number_value(json_object_get(sub, "code"));
        if (code == 409 || code == 429 || code >= 500)
            transient = 1;
        const char *ra =
            json_string_value(json_object_get(json_object_get(sub, "headers"), "retry-after"));
        int64_t secs;
        if (code == 429 && ra &&
            mtr_parse_retry_after(ra, strlen(ra), r->s->host->now(r->s->ctx), &secs) == 0)
            retry_after = secs;
    }
    char *data = json_dumps(responses, JSON_COMPACT | JSON_PRESERVE_ORDER);
    struct mtr_fetch_result res = {.status = transient ? MTR_EAGAIN : MTR_OK,
                                   .data_json = data,
                                   .data_len = data ? strlen(data) : 0,
                                   .error = transient ? "the vehicle could not answer every "
                                                        "endpoint; trying again later"
                                                      : NULL,
                                   .retry_after_s = retry_after};
    finish(r, &res);
    free(data);
    json_decref(v);
}

/* ---- starting requests ---------------------------------------------------------------------- */

static int start(struct sc *s, struct req *r);

static int start_refresh(struct sc *s, struct req *r)
{
    char *escaped = curl_easy_escape(r->easy, r->refresh ? r->refresh : "", 0);
    size_t n = escaped ? strlen(escaped) + 64 : 0;
    free(r->body);
    r->body = escaped ? malloc(n) : NULL;
    if (!r->body) {
        curl_free(escaped);
        return -1;
    }
    snprintf(r->body, n, "grant_type=refresh_token&refresh_token=%s", escaped);
    curl_free(escaped);
    r->kind = REQ_REFRESH;
    return start(s, r);
}

static int start_batch(struct sc *s, struct req *r)
{
    size_t n = 32;
    for (size_t i = 0; i < r->n_endpoints; i++)
        n += strlen(r->endpoints[i]) + 16;
    free(r->body);
    if (!(r->body = malloc(n)))
        return -1;
    size_t len = (size_t)snprintf(r->body, n, "{\"requests\":[");
    for (size_t i = 0; i < r->n_endpoints; i++)
        len += (size_t)snprintf(r->body + len, n - len, "%s{\"path\":\"%s\"}", i ? "," : "",
                                r->endpoints[i]);
    snprintf(r->body + len, n - len, "]}");
    r->kind = REQ_BATCH;
    return start(s, r);
}

/* Configures and adds the request's transfer (or queues it at capacity). */
static int start(struct sc *s, struct req *r)
{
    if (s->in_flight >= s->concurrency) {
        r->next = NULL;
        if (s->queue_tail)
            s->queue_tail->next = r;
        else
            s->queue = r;
        s->queue_tail = r;
        return 0;
    }
    curl_easy_reset(r->easy);
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    free(r->response.p);
    r->response = (struct buf){0};
    r->retry_after_s = -1;
    r->refused[0] = r->curl_error[0] = '\0';
    char url[2048], line[8192];
    if (r->kind == REQ_BATCH) {
        snprintf(url, sizeof url, "%s/vehicles/%s/batch", s->api_url, r->vehicle_id);
        setup_easy(s, r, url);
        snprintf(line, sizeof line, "Authorization: Bearer %s", r->access ? r->access : "");
        r->headers = curl_slist_append(r->headers, line);
        r->headers = curl_slist_append(r->headers, r->units == MTR_UNITS_IMPERIAL
                                                       ? "SC-Unit-System: imperial"
                                                       : "SC-Unit-System: metric");
        r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
    } else {
        setup_easy(s, r, s->auth_url);
        curl_easy_setopt(r->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(r->easy, CURLOPT_USERNAME, s->client_id ? s->client_id : "");
        curl_easy_setopt(r->easy, CURLOPT_PASSWORD, s->client_secret ? s->client_secret : "");
        r->headers =
            curl_slist_append(r->headers, "Content-Type: application/x-www-form-urlencoded");
    }
    r->headers = curl_slist_append(r->headers, "Expect:");
    if (!r->headers)
        return -1;
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
    if (curl_multi_add_handle(s->multi, r->easy) != CURLM_OK)
        return -1;
    s->in_flight++;
    return 0;
}

/* ---- completions --------------------------------------------------------------------------- */

/* When a token from the token endpoint expires: its expires_in is the
 * endpoint's word, so it is bounded (0 .. one year) before it is added. */
static mtr_time expires_at(struct sc *s, json_t *expires_in)
{
    json_int_t v = json_integer_value(expires_in);
    v = v < 0 ? 0 : v > 366 * 86400 ? 366 * 86400 : v;
    return s->host->now(s->ctx) + (mtr_time)v;
}

static void complete_refresh(struct sc *s, struct req *r, long status)
{
    json_error_t je;
    json_t *v = status == 200 && r->response.p ? json_loads(r->response.p, 0, &je) : NULL;
    const char *access = json_string_value(json_object_get(v, "access_token"));
    const char *refresh = json_string_value(json_object_get(v, "refresh_token"));
    json_t *expires = json_object_get(v, "expires_in");
    if (access && refresh && json_is_integer(expires)) {
        struct mtr_fetch_result res = {
            .status = MTR_EAGAIN,
            .refreshed = 1,
            .new_access_token = access,
            .new_refresh_token = refresh,
            .new_access_expires = expires_at(s, expires),
            .retry_after_s = 0,
        };
        finish(r, &res);
    } else if (status == 0 || status >= 500) {
        finish_error(r, MTR_EAGAIN, 502, "UPSTREAM", "the token endpoint could not be reached");
    } else {
        s->host->log(s->ctx, MTR_LOG_WARN, "vehicle %s: refresh token rejected (HTTP %ld)",
                     r->vehicle_id, status);
        finish_reauth(r);
    }
    json_decref(v);
}

static void complete_batch(struct sc *s, struct req *r, long status)
{
    if (status == 200) {
        finish_batch(r);
    } else if (status == 401 && r->refresh) { /* refused token: refresh, the core refetches */
        if (start_refresh(s, r) == 0)
            return;
        finish_error(r, MTR_EAGAIN, 502, "UPSTREAM", "cannot start the token refresh");
    } else if (status == 401) {
        finish_reauth(r);
    } else if (status == 429) {
        finish_error(r, MTR_EAGAIN, 429, "RATE_LIMIT", "rate limited by Smartcar");
    } else if (status == 409 || status >= 500) {
        finish_error(r, MTR_EAGAIN, (int)status, status == 409 ? "VEHICLE_STATE" : "UPSTREAM",
                     "the vehicle or Smartcar could not answer; trying again later");
    } else {
        finish_error(r, MTR_OK, (int)status, "PERMISSION", "Smartcar refused the request");
    }
    req_free(r);
}

static void complete(struct sc *s, struct req *r, CURLcode result)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s->multi, r->easy);
    s->in_flight--;
    if (result != CURLE_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s",
                 r->refused[0]      ? r->refused
                 : r->curl_error[0] ? r->curl_error
                                    : curl_easy_strerror(result));
        finish_error(r, MTR_EAGAIN, 502, "UPSTREAM", why);
        req_free(r);
        return;
    }
    if (r->kind == REQ_REFRESH) {
        complete_refresh(s, r, status);
        req_free(r);
        return;
    }
    complete_batch(s, r, status);
}

static int sc_poll(void *state, int timeout_ms)
{
    struct sc *s = state;
    int running = 0, msgs;
    while (s->queue && s->in_flight < s->concurrency) {
        struct req *r = s->queue;
        s->queue = r->next;
        if (!s->queue)
            s->queue_tail = NULL;
        if (start(s, r) != 0) {
            finish_error(r, MTR_EAGAIN, 502, "UPSTREAM", "cannot start the request");
            req_free(r);
        }
    }
    if (s->in_flight == 0)
        return 0;
    curl_multi_perform(s->multi, &running);
    if (running > 0 && timeout_ms > 0) {
        curl_multi_poll(s->multi, NULL, 0, timeout_ms, NULL);
        curl_multi_perform(s->multi, &running);
    }
    CURLMsg *m;
    while ((m = curl_multi_info_read(s->multi, &msgs)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct req *r;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        complete(s, r, m->data.result);
    }
    return s->in_flight + (s->queue ? 1 : 0);
}

/* ---- submit ------------------------------------------------------------------------------------
 */

/* Takes one request from the app-wide bucket; returns the seconds to wait
 * when it is empty, or 0. In the daemon the bucket is the host's, shared by
 * every node on the ledger (one budget per client id); otherwise this
 * instance keeps its own. */
static int64_t take_token(struct sc *s)
{
    if (MTR_HOST_HAS(s->host, rate_take)) {
        char key[160];
        int64_t wait = 0;
        snprintf(key, sizeof key, "smartcar:%.140s", s->client_id ? s->client_id : "");
        int got = s->host->rate_take(s->ctx, key, s->per_minute, s->burst, &wait);
        if (got >= 0)
            return got == 1 ? 0 : wait < 1 ? 1 : wait;
    }
    mtr_time now = s->host->now(s->ctx);
    if (s->bucket_at == 0)
        s->bucket_at = now;
    s->bucket += (double)(now - s->bucket_at) * (double)s->per_minute / 60.0;
    if (s->bucket > (double)s->burst)
        s->bucket = (double)s->burst;
    s->bucket_at = now;
    if (s->bucket >= 1.0) {
        s->bucket -= 1.0;
        return 0;
    }
    int64_t wait = (int64_t)((1.0 - s->bucket) * 60.0 / (double)s->per_minute) + 1;
    return wait < 1 ? 1 : wait;
}

static struct req *new_req(struct sc *s, const struct mtr_fetch_request *q, mtr_fetch_done_fn done,
                           void *core)
{
    struct req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->s = s;
    r->done = done;
    r->core = core;
    r->cookie = q->cookie;
    r->units = q->units;
    r->vehicle_id = strdup(q->vehicle->id);
    r->access = q->vehicle->access_token ? strdup(q->vehicle->access_token) : NULL;
    r->refresh = q->vehicle->refresh_token ? strdup(q->vehicle->refresh_token) : NULL;
    r->endpoints = calloc(q->n_endpoints ? q->n_endpoints : 1, sizeof *r->endpoints);
    r->easy = curl_easy_init();
    if (!r->vehicle_id || !r->endpoints || !r->easy) {
        req_free(r);
        return NULL;
    }
    for (size_t i = 0; i < q->n_endpoints; i++) {
        if (!(r->endpoints[i] = strdup(q->endpoints[i]))) {
            req_free(r);
            return NULL;
        }
        r->n_endpoints++;
    }
    return r;
}

static int sc_submit(void *state, const struct mtr_fetch_request *reqs, size_t n,
                     mtr_fetch_done_fn done, void *core)
{
    struct sc *s = state;
    for (size_t i = 0; i < n; i++) {
        const struct mtr_fetch_request *q = &reqs[i];
        struct req *r = new_req(s, q, done, core);
        if (!r) {
            struct mtr_fetch_result res = {.status = MTR_EAGAIN,
                                           .error = "out of memory",
                                           .cookie = q->cookie,
                                           .retry_after_s = -1};
            done(core, &res);
            continue;
        }
        int64_t wait;
        if (!r->access) {
            finish_reauth(r);
            req_free(r);
        } else if ((wait = take_token(s)) > 0) {
            r->retry_after_s = wait;
            finish_error(r, MTR_EAGAIN, 429, "RATE_LIMIT",
                         "over the application's request budget; waiting for it to refill");
            req_free(r);
        } else {
            int expiring = q->vehicle->access_expires &&
                           q->vehicle->access_expires <= q->now + 60 && r->refresh;
            if ((expiring ? start_refresh(s, r) : start_batch(s, r)) != 0) {
                finish_error(r, MTR_EAGAIN, 502, "UPSTREAM", "cannot start the request");
                req_free(r);
            }
        }
    }
    return MTR_OK;
}

static const char *sc_mode(void *state)
{
    return ((struct sc *)state)->test_mode ? "test" : "live";
}

/* ---- synchronous helpers for the command line -------------------------------------------------
 */

/* Runs one request to completion; returns the HTTP status (0: transport error). */
static long run_sync(struct sc *s, struct req *r, const char *url, const char *bearer,
                     const char *form)
{
    setup_easy(s, r, url);
    char line[8192];
    if (bearer) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", bearer);
        r->headers = curl_slist_append(r->headers, line);
    } else {
        curl_easy_setopt(r->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(r->easy, CURLOPT_USERNAME, s->client_id ? s->client_id : "");
        curl_easy_setopt(r->easy, CURLOPT_PASSWORD, s->client_secret ? s->client_secret : "");
        r->headers =
            curl_slist_append(r->headers, "Content-Type: application/x-www-form-urlencoded");
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, form);
    }
    curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    long status = 0;
    if (curl_easy_perform(r->easy) == CURLE_OK)
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

static int sc_list_vehicles(void *state, const char *access_token, mtr_vehicle_id_fn fn, void *arg)
{
    struct sc *s = state;
    long offset = 0, total = 1;
    while (offset < total) {
        struct req *r = calloc(1, sizeof *r);
        if (!r || !(r->easy = curl_easy_init())) {
            req_free(r);
            s->host->set_error(s->ctx, "out of memory");
            return MTR_ERR;
        }
        r->s = s;
        char url[2048];
        snprintf(url, sizeof url, "%s/vehicles?limit=50&offset=%ld", s->api_url, offset);
        long status = run_sync(s, r, url, access_token, NULL);
        json_error_t je;
        json_t *v = status == 200
                        ? json_loadb(r->response.p ? r->response.p : "", r->response.len, 0, &je)
                        : NULL;
        json_t *ids = json_object_get(v, "vehicles");
        json_t *count = json_object_get(json_object_get(v, "paging"), "count");
        if (!json_is_array(ids)) {
            s->host->set_error(s->ctx, "listing vehicles failed: %s",
                               status          ? "the API answered an error"
                               : r->refused[0] ? r->refused
                                               : r->curl_error);
            json_decref(v);
            req_free(r);
            return MTR_ERR;
        }
        size_t i;
        json_t *id;
        json_array_foreach(ids, i, id) if (json_is_string(id)) fn(arg, json_string_value(id));
        total = json_is_integer(count) ? (long)json_integer_value(count)
                                       : offset + (long)json_array_size(ids);
        offset += (long)json_array_size(ids);
        if (json_array_size(ids) == 0)
            total = offset;
        json_decref(v);
        req_free(r);
    }
    return MTR_OK;
}

static int sc_exchange_code(void *state, const char *code, const char *redirect_uri,
                            mtr_tokens_fn fn, void *arg)
{
    struct sc *s = state;
    struct req *r = calloc(1, sizeof *r);
    if (!r || !(r->easy = curl_easy_init())) {
        req_free(r);
        s->host->set_error(s->ctx, "out of memory");
        return MTR_ERR;
    }
    r->s = s;
    char *c = curl_easy_escape(r->easy, code, 0), *u = curl_easy_escape(r->easy, redirect_uri, 0);
    char form[4096];
    snprintf(form, sizeof form, "grant_type=authorization_code&code=%s&redirect_uri=%s", c ? c : "",
             u ? u : "");
    curl_free(c);
    curl_free(u);
    long status = run_sync(s, r, s->auth_url, NULL, form);
    json_error_t je;
    json_t *v = status == 200 ? json_loadb(r->response.p, r->response.len, 0, &je) : NULL;
    const char *access = json_string_value(json_object_get(v, "access_token"));
    const char *refresh = json_string_value(json_object_get(v, "refresh_token"));
    json_t *expires = json_object_get(v, "expires_in");
    int rc = MTR_ERR;
    if (access && refresh && json_is_integer(expires)) {
        fn(arg, access, refresh, expires_at(s, expires));
        rc = MTR_OK;
    } else {
        if (status == 0)
            s->host->set_error(s->ctx, "cannot reach %s: %s", s->auth_url,
                               r->refused[0]      ? r->refused
                               : r->curl_error[0] ? r->curl_error
                                                  : "no answer");
        else if (status != 200)
            s->host->set_error(s->ctx,
                               "the authorization code was not accepted (%s answered HTTP %ld)",
                               s->auth_url, status);
        else
            s->host->set_error(s->ctx,
                               "%s answered 200 without access_token, refresh_token and "
                               "expires_in",
                               s->auth_url);
    }
    json_decref(v);
    req_free(r);
    return rc;
}

/* ---- life cycle -------------------------------------------------------------------------------
 */

static int sc_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    struct sc *s = calloc(1, sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    *state = s;
    s->host = host;
    s->ctx = ctx;
    s->api_url = host->get_string(ctx, "api_url");
    s->auth_url = host->get_string(ctx, "auth_url");
    s->client_id = host->get_string(ctx, "client_id");
    s->client_secret = host->get_string(ctx, "client_secret");
    s->ca_file = host->get_string(ctx, "ca_file");
    s->proxy = host->get_string(ctx, "proxy");
    s->timeout_ms = host->get_duration_ms(ctx, "timeout");
    s->concurrency = host->get_int(ctx, "concurrency");
    s->per_minute = host->get_int(ctx, "requests_per_minute");
    s->burst = host->get_int(ctx, "burst");
    s->allow_private = host->get_bool(ctx, "allow_private_networks");
    s->test_mode = host->get_enum(ctx, "mode") == 1;
    s->bucket = (double)s->burst;
    for (const char *const *u = (const char *const[]){s->api_url, s->auth_url, NULL}; *u; u++)
        if (strncmp(*u, "https://", 8) != 0 && strncmp(*u, "http://", 7) != 0) {
            host->set_error(ctx, "'%s' must be an http(s) URL",
                            *u == s->api_url ? "api_url" : "auth_url");
            return MTR_ERR;
        }
    return MTR_OK;
}

static int sc_start(void *state)
{
    struct sc *s = state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(s->multi = curl_multi_init())) {
        s->host->set_error(s->ctx, "libcurl failed to initialise");
        return MTR_ERR;
    }
    s->started = 1;
    /* through a proxy the guard sees only the proxy: judge the targets here */
    for (const char *const *u = (const char *const[]){s->api_url, s->auth_url, NULL};
         s->proxy && !s->allow_private && *u; u++) {
        CURLU *h = curl_url();
        char *host = NULL, why[300];
        int refused = !h || curl_url_set(h, CURLUPART_URL, *u, 0) != CURLUE_OK ||
                      curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
                      mtr_host_private(host, why, sizeof why) != NULL;
        if (refused)
            s->host->set_error(s->ctx,
                               "refusing %s through the proxy: %s (set "
                               "allow_private_networks: true to allow)",
                               *u, host ? why : "cannot read its host");
        curl_free(host);
        curl_url_cleanup(h);
        if (refused)
            return MTR_ERR;
    }
    return MTR_OK;
}

static void sc_stop(void *state)
{
    struct sc *s = state;
    if (!s->started)
        return;
    while (s->in_flight > 0 || s->queue) /* bounded by each transfer's timeout */
        sc_poll(s, 100);
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
    curl_global_cleanup();
    s->started = 0;
}

static void sc_destroy(void *state)
{
    struct sc *s = state;
    if (!s)
        return;
    sc_stop(s);
    free(s);
}

static const struct mtr_source_ops sc_ops = {
    .struct_size = sizeof(struct mtr_source_ops),
    .mode = sc_mode,
    .submit = sc_submit,
    .poll = sc_poll,
    .list_vehicles = sc_list_vehicles,
    .exchange_code = sc_exchange_code,
};

static const struct mtr_option sc_options[] = {
    {.name = "api_url",
     .type = MTR_OPT_STRING,
     .default_value = "https://api.smartcar.com/v2.0",
     .help = "Smartcar's vehicle API"},
    {.name = "auth_url",
     .type = MTR_OPT_STRING,
     .default_value = "https://auth.smartcar.com/oauth/token",
     .help = "Smartcar's token endpoint"},
    {.name = "client_id",
     .type = MTR_OPT_STRING,
     .flags = MTR_OPT_REQUIRED,
     .help = "the application's client id"},
    {.name = "client_secret",
     .type = MTR_OPT_SECRET,
     .flags = MTR_OPT_REQUIRED,
     .help = "the application's client secret"},
    {.name = "mode",
     .type = MTR_OPT_ENUM,
     .default_value = "live",
     .choices = modes,
     .help = "live vehicles, or Smartcar test-mode vehicles (payload mode: test)"},
    {.name = "timeout",
     .type = MTR_OPT_DURATION,
     .default_value = "60s",
     .min = 1000,
     .max = 600000,
     .help = "a request without an answer within this has failed (Smartcar allows 300 s)"},
    {.name = "concurrency",
     .type = MTR_OPT_INT,
     .default_value = "16",
     .min = 1,
     .max = 1024,
     .help = "requests in flight at once"},
    {.name = "requests_per_minute",
     .type = MTR_OPT_INT,
     .default_value = "120",
     .min = 1,
     .max = 1000000,
     .help = "the application's request budget (token bucket refill), shared by every node on "
             "the ledger"},
    {.name = "burst",
     .type = MTR_OPT_INT,
     .default_value = "120",
     .min = 1,
     .max = 1000000,
     .help = "requests the bucket holds"},
    {.name = "allow_private_networks",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = "allow loopback, private, link-local and metadata addresses"},
    {.name = "ca_file", .type = MTR_OPT_STRING, .help = "CA bundle to verify TLS peers with"},
    {.name = "proxy",
     .type = MTR_OPT_STRING,
     .help = "HTTP(S) proxy URL; the environment's http_proxy and HTTPS_PROXY are never used, "
             "and api_url and auth_url are still checked"},
    {0},
};

static const struct mtr_plugin sc_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SOURCE),
    .name = "smartcar",
    .version = "1.0.0",
    .description = "live vehicles through Smartcar's API (payload mode: live or test)",
    .options = sc_options,
    .create = sc_create,
    .start = sc_start,
    .stop = sc_stop,
    .destroy = sc_destroy,
    .source = &sc_ops,
};

MTR_PLUGIN_DEFINE(sc_plugin)
