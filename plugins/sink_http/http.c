/* Sink `http`: POSTs each signed payload to the webhook's callback URI -
 * many deliveries in flight over reused connections, driven from poll() so
 * nothing blocks the scheduler. Requests are framed by the sink itself on
 * connections libcurl opens (plain.h); through a proxy, libcurl's own multi
 * transfers carry them. TLS is verified; redirects are not followed (a 3xx is
 * a failure); Retry-After is reported; and an SSRF guard refuses loopback,
 * private, link-local, CGNAT and metadata addresses after DNS resolution, at
 * every connect, unless allow_private_networks is true. Optionally adds the
 * Standard Webhooks headers (webhook-id, webhook-timestamp,
 * webhook-signature). With max_in_flight, max_rate or pause_on_retry_after it
 * protects each receiver origin (limits.h): what an origin cannot take now is
 * held or deferred. */
#include <metronome/metronome.h>
#include <metronome/netguard.h>
#include "http.h"
#include "limits.h"
#include "plain.h"
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* ---- the SSRF guard ------------------------------------------------------------------- */

curl_socket_t guarded_open(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    struct transfer *t = clientp;
    const char *why = NULL;
    char ip[INET6_ADDRSTRLEN] = "?";
    (void)purpose;
    if (!t->sink->allow_private) {
        const struct sockaddr *sa = (const struct sockaddr *)&address->addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
                      sizeof ip);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
                      sizeof ip);
        why = mtr_address_private(sa);
    }
    if (why) {
        snprintf(t->refused, sizeof t->refused,
                 "refused to connect to %s: %s (set allow_private_networks: true to allow)", ip,
                 why);
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

/* Through a proxy the socket goes to the proxy, so the guard above never sees
 * the target: it is resolved and judged here instead. Returns 1 when refused. */
static int target_private(const char *url, char *why, size_t len)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int refused = 1;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        refused = mtr_host_private(host, why, len) != NULL;
    else
        snprintf(why, len, "cannot read the host of %s", url);
    curl_free(host);
    curl_url_cleanup(u);
    return refused;
}

/* ---- transfers --------------------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t n, void *userdata)
{
    struct transfer *t = userdata;
    size_t len = size * n, room = RESPONSE_MAX - t->response_len;
    size_t take = len < room ? len : room;
    if (take) {
        char *p = realloc(t->response, t->response_len + take + 1);
        if (!p)
            return 0;
        memcpy(p + t->response_len, ptr, take);
        t->response = p;
        t->response_len += take;
        p[t->response_len] = '\0';
    }
    return len; /* the rest is read and dropped */
}

static size_t on_header(char *buf, size_t size, size_t n, void *userdata)
{
    struct transfer *t = userdata;
    size_t len = size * n;
    int64_t secs;
    if (len > 12 && strncasecmp(buf, "retry-after:", 12) == 0 &&
        mtr_parse_retry_after(buf + 12, len - 12, t->submitted_at, &secs) == 0)
        t->retry_after_s = secs;
    return len;
}

/* The options every delivery of this sink shares. */
static void set_constant_options(struct http_sink *s, struct transfer *t)
{
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    /* HTTP/1.1 even when the receiver offers HTTP/2: multiplexed over one TLS connection
     * the deliveries cost 49% more CPU and went 0.25 T against 0.39 T (bench/README.md) */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    /* "" keeps libcurl from taking http_proxy/HTTPS_PROXY from the environment:
     * through a proxy the guard would see the proxy's address, not the target's */
    curl_easy_setopt(e, CURLOPT_PROXY, s->proxy ? s->proxy : "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(s->timeout_ms < 10000 ? s->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, guarded_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    if (s->share)
        curl_easy_setopt(e, CURLOPT_SHARE, s->share);
}

static struct transfer *transfer_get(struct http_sink *s)
{
    struct transfer *t = s->free_list;
    if (t) {
        s->free_list = t->next_free;
    } else {
        if (!(t = calloc(1, sizeof *t)))
            return NULL;
        if (!(t->easy = curl_easy_init())) {
            free(t);
            return NULL;
        }
        t->kind = KIND_TRANSFER;
        t->sink = s;
        set_constant_options(s, t);
    }
    t->conn = NULL;
    t->fresh = 0;
    t->response = NULL;
    t->response_len = 0;
    t->retry_after_s = -1;
    t->refused[0] = '\0';
    t->curl_error[0] = '\0';
    t->next_free = NULL;
    return t;
}

static void transfer_free(struct transfer *t)
{
    curl_easy_cleanup(t->easy);
    free(t->nodes);
    free(t->lines);
    free(t->text);
    free(t->request);
    free(t);
}

static void transfer_put(struct http_sink *s, struct transfer *t)
{
    free(t->response);
    t->response = NULL;
    t->next_free = s->free_list;
    s->free_list = t;
}

/* ---- request headers ----------------------------------------------------------------- */

/* The lines of one request, gathered before they become the list. */
struct lines {
    const char **line; /* a line given as is, or NULL: the next formatted one */
    size_t n, max;
    char *text; /* formatted lines, NUL-separated */
    size_t len, cap;
    int oom;
};

static void add_line(struct lines *l, const char *line)
{
    if (l->n < l->max)
        l->line[l->n++] = line;
    else
        l->oom = 1;
}

static void add_header(struct lines *l, const char *name, const char *value)
{
    size_t need = strlen(name) + 2 + strlen(value) + 1;
    if (l->len + need > l->cap) {
        size_t cap = (l->len + need) * 2;
        char *p = realloc(l->text, cap);
        if (!p) {
            l->oom = 1;
            return;
        }
        l->text = p;
        l->cap = cap;
    }
    l->len += (size_t)sprintf(l->text + l->len, "%s: %s", name, value) + 1;
    add_line(l, NULL);
}

/* webhook-signature: v1,base64(HMAC-SHA256(key, "id.timestamp.body")) */
static void standard_headers(struct http_sink *s, struct lines *l, const struct mtr_delivery *d)
{
    char ts[32], sig[128];
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    snprintf(ts, sizeof ts, "%lld", (long long)d->now);
    crypto_auth_hmacsha256_init(&st, s->sw_key, s->sw_key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)d->delivery_id,
                                  strlen(d->delivery_id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)d->body, d->body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(sig, "v1,", 3);
    sodium_bin2base64(sig + 3, sizeof sig - 3, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    add_header(l, "webhook-id", d->delivery_id);
    add_header(l, "webhook-timestamp", ts);
    add_header(l, "webhook-signature", sig);
}

/* Rewrites the transfer's header list for d; -1 without memory. */
static int build_headers(struct http_sink *s, struct transfer *t, const struct mtr_delivery *d)
{
    size_t extra = s->host->get_list_len(s->ctx, "headers");
    size_t max = 1 + d->n_headers + extra + 3;
    if (max > t->n_nodes) {
        struct curl_slist *nodes = realloc(t->nodes, max * sizeof *nodes);
        if (nodes)
            t->nodes = nodes;
        const char **lines = realloc(t->lines, max * sizeof *lines);
        if (lines)
            t->lines = lines;
        if (!nodes || !lines)
            return -1;
        t->n_nodes = max;
    }
    struct lines l = {.line = t->lines, .max = max, .text = t->text, .cap = t->text_cap};
    add_line(&l, "Expect:");
    for (size_t i = 0; i < d->n_headers; i++)
        add_header(&l, d->headers[i].name, d->headers[i].value);
    for (size_t i = 0; i < extra; i++)
        add_line(&l, s->host->get_list_item(s->ctx, "headers", i));
    if (s->standard_webhooks)
        standard_headers(s, &l, d);
    t->text = l.text; /* the buffer may have grown, even on failure */
    t->text_cap = l.cap;
    if (l.oom)
        return -1;
    const char *next_text = t->text;
    for (size_t i = 0; i < l.n; i++) {
        const char *line = l.line[i];
        if (!line) { /* formatted: the next one in text */
            line = next_text;
            next_text += strlen(next_text) + 1;
        }
        t->nodes[i].data = (char *)line;
        t->nodes[i].next = i + 1 < l.n ? &t->nodes[i + 1] : NULL;
    }
    return 0;
}

/* Hands d back to the core to be sent again in wait seconds (sink.h: deferral). */
static void defer(const struct mtr_delivery *d, mtr_sink_done_fn done, void *core, int64_t wait,
                  int http_status, const char *why)
{
    struct mtr_sink_outcome o = {.status = MTR_EAGAIN,
                                 .http_status = http_status,
                                 .retry_after_s = wait,
                                 .error = why,
                                 .cookie = d->cookie};
    done(core, &o);
}

/* Starts the request of d to target; MTR_OK or MTR_ERR (with the error set). */
static int start(struct http_sink *s, const struct mtr_delivery *d, const char *target,
                 struct origin *origin, mtr_sink_done_fn done, void *core)
{
    struct transfer *t = transfer_get(s);
    if (!t || build_headers(s, t, d) != 0) {
        if (t)
            transfer_put(s, t);
        s->host->set_error(s->ctx, "out of memory");
        return MTR_ERR;
    }
    t->origin = origin;
    t->done = done;
    t->core = core;
    t->cookie = d->cookie;
    t->submitted_at = d->now;
    t->body = d->body;
    t->body_len = d->body_len;
    clock_gettime(CLOCK_MONOTONIC, &t->started);
    const char *path;
    size_t path_len;
    int rc;
    /* counted before it starts: a request on a kept connection can end within
     * plain_start (complete() then uncounts it) */
    s->in_flight++;
    if (origin)
        limits_start(origin, d->now);
    if (plain_takes(s, t, target, &path, &path_len)) {
        rc = plain_start(s, t, path, path_len);
    } else {
        CURL *e = t->easy;
        curl_easy_setopt(e, CURLOPT_URL, target);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->body_len);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->nodes);
        rc = curl_multi_add_handle(s->multi, e) == CURLM_OK ? MTR_OK : MTR_ERR;
    }
    if (rc != MTR_OK) { /* nothing started */
        s->in_flight--;
        if (origin)
            limits_unstart(origin);
        transfer_put(s, t);
        s->host->set_error(s->ctx, "cannot start the transfer");
        return MTR_ERR;
    }
    return MTR_OK;
}

/* Queues d behind origin's requests; MTR_OK or MTR_ERR. */
static int hold(struct http_sink *s, struct origin *o, const struct mtr_delivery *d,
                mtr_sink_done_fn done, void *core)
{
    struct held *h = malloc(sizeof *h);
    if (!h) {
        s->host->set_error(s->ctx, "out of memory");
        return MTR_ERR;
    }
    *h = (struct held){.d = *d, .done = done, .core = core};
    if (o->tail)
        o->tail->next = h;
    else
        o->head = h;
    o->tail = h;
    o->n_held++;
    s->held++;
    return MTR_OK;
}

/* The target of d: the sink's url, else the callback; NULL with the error set. */
static const char *target_of(struct http_sink *s, const struct mtr_delivery *d)
{
    const char *target = s->url ? s->url : d->target;
    char why[300];
    if (!target) {
        s->host->set_error(s->ctx, "no target: events have no callback URI, so a sink in "
                                   "'events.sinks' needs its own 'url'");
        return NULL;
    }
    if (s->proxy && !s->allow_private && target_private(target, why, sizeof why)) {
        s->host->set_error(s->ctx,
                           "refused to send through the proxy: %s (set "
                           "allow_private_networks: true to allow)",
                           why);
        return NULL;
    }
    return target;
}

static int http_submit(void *state, const struct mtr_delivery *d, mtr_sink_done_fn done, void *core)
{
    struct http_sink *s = state;
    const char *target = target_of(s, d);
    struct origin *o = NULL;
    if (!target)
        return MTR_ERR;
    if (limits_on(&s->limits)) {
        char why[400];
        int64_t wait;
        if (!(o = limits_origin(&s->limits, target))) {
            s->host->set_error(s->ctx, "cannot read the origin of '%.200s'", target);
            return MTR_ERR;
        }
        switch (limits_check(&s->limits, o, d->now, 0, &wait, why, sizeof why)) {
        case DEFER:
            defer(d, done, core, wait, 0, why);
            return MTR_OK;
        case HOLD:
            return hold(s, o, d, done, core);
        case GO:
            break;
        }
    }
    if (s->in_flight >= s->concurrency)
        return MTR_EAGAIN;
    return start(s, d, target, o, done, core);
}

/* Sends or defers what origin o holds, oldest first, as far as its limits
 * and the sink's concurrency let it. */
static void release(void *arg, struct origin *o)
{
    struct http_sink *s = arg;
    mtr_time now = s->host->now(s->ctx);
    while (o->head) {
        struct held *h = o->head;
        char why[400];
        int64_t wait;
        enum verdict v = limits_check(&s->limits, o, now, 1, &wait, why, sizeof why);
        if (v == HOLD || (v == GO && s->in_flight >= s->concurrency))
            return;
        o->head = h->next;
        if (!o->head)
            o->tail = NULL;
        o->n_held--;
        s->held--;
        h->d.now = now;
        const char *target = v == DEFER ? NULL : target_of(s, &h->d);
        if (v == DEFER) {
            defer(&h->d, h->done, h->core, wait, 0, why);
        } else if (!target || start(s, &h->d, target, o, h->done, h->core) != MTR_OK) {
            snprintf(why, sizeof why, "not sent: out of memory, or its target was refused");
            struct mtr_sink_outcome out = {
                .status = MTR_ERR, .retry_after_s = -1, .error = why, .cookie = h->d.cookie};
            h->done(h->core, &out);
        }
        free(h);
    }
}

/* The receiver asked origin o to wait: what it holds is deferred as well. */
static void defer_held(struct http_sink *s, struct origin *o, mtr_time now)
{
    while (o->head) {
        struct held *h = o->head;
        char why[400];
        o->head = h->next;
        o->n_held--;
        s->held--;
        snprintf(why, sizeof why, "%s asked to wait (HTTP %d with Retry-After)", o->key,
                 o->paused_status);
        defer(&h->d, h->done, h->core, o->paused_until - now, 0, why);
        free(h);
    }
    o->tail = NULL;
}

void complete(struct http_sink *s, struct transfer *t, long status, const char *error)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct mtr_sink_outcome o = {
        .status = !error && status >= 200 && status < 300 ? MTR_OK : MTR_ERR,
        .http_status = (int)status,
        .retry_after_s = t->retry_after_s,
        .latency_us =
            (now.tv_sec - t->started.tv_sec) * 1000000 + (now.tv_nsec - t->started.tv_nsec) / 1000,
        .error = error,
        .response = t->response,
        .response_len = t->response_len,
        .cookie = t->cookie,
    };
    s->in_flight--;
    struct origin *origin = t->origin;
    mtr_time at = s->host->now(s->ctx);
    char waiting[200];
    if (origin) {
        limits_end(origin);
        if (o.status == MTR_ERR && (status == 429 || status == 503) &&
            limits_pause(&s->limits, origin, at, t->retry_after_s, (int)status)) {
            o.status = MTR_EAGAIN; /* the receiver's word: wait, do not count it a failure */
            snprintf(waiting, sizeof waiting, "HTTP %ld: the receiver asked to wait %llds", status,
                     (long long)t->retry_after_s);
            o.error = waiting;
        } else {
            limits_answered(origin);
        }
    }
    mtr_sink_done_fn done = t->done;
    void *core = t->core;
    done(core, &o);
    transfer_put(s, t);
    if (origin && origin->paused_until > at)
        defer_held(s, origin, at);
}

/* A libcurl transfer ended with result. */
static void finish(struct http_sink *s, struct transfer *t, CURLcode result)
{
    long status = 0;
    char error[512];
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(s->multi, t->easy);
    if (result == CURLE_OK) {
        complete(s, t, status, NULL);
        return;
    }
    if (t->refused[0])
        snprintf(error, sizeof error, "%s", t->refused);
    else if (result == CURLE_OPERATION_TIMEDOUT)
        snprintf(error, sizeof error, "timed out after %lld ms", (long long)s->timeout_ms);
    else if (result == CURLE_OUT_OF_MEMORY && status > 0) /* libcurl's word for it */
        snprintf(error, sizeof error,
                 "the receiver answered HTTP %ld with response headers larger than 100 KiB "
                 "(libcurl's limit); the answer was not read",
                 status);
    else
        snprintf(error, sizeof error, "%s",
                 t->curl_error[0] ? t->curl_error : curl_easy_strerror(result));
    complete(s, t, result == CURLE_OPERATION_TIMEDOUT ? 0 : status, error);
}

/* What libcurl finished: transfers, and the connections plain.c asked it to open. */
static void read_messages(struct http_sink *s)
{
    CURLMsg *m;
    int msgs;
    while ((m = curl_multi_info_read(s->multi, &msgs)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *p = NULL;
        CURLcode result = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        if (*(enum handle_kind *)(void *)p == KIND_CONN)
            plain_connected(s, (struct conn *)(void *)p, result);
        else
            finish(s, (struct transfer *)(void *)p, result);
    }
}

static int http_poll(void *state, int timeout_ms)
{
    struct http_sink *s = state;
    int running = 0;
    if (s->held)
        limits_each_holding(&s->limits, release, s);
    if (s->in_flight == 0)
        return (int)s->held;
    curl_multi_perform(s->multi, &running);
    read_messages(s);
    struct curl_waitfd *fds;
    unsigned n = plain_wait_fds(s, &fds);
    if (running > 0 || n > 0) {
        curl_multi_poll(s->multi, fds, n, timeout_ms, NULL);
        plain_progress(s, fds, n);
        curl_multi_perform(s->multi, &running);
        read_messages(s);
    }
    if (s->held)
        limits_each_holding(&s->limits, release, s);
    return s->in_flight + (int)s->held;
}

static uint64_t http_max_body(void *state)
{
    return ((struct http_sink *)state)->max_body_bytes;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

/* A Standard Webhooks secret is "whsec_" followed by base64 of 24-64 bytes. */
static int read_sw_secret(struct http_sink *s, const char *secret)
{
    if (!secret || strncmp(secret, "whsec_", 6) != 0)
        return -1;
    const char *b64 = secret + 6;
    if (sodium_base642bin(s->sw_key, sizeof s->sw_key, b64, strlen(b64), NULL, &s->sw_key_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    return s->sw_key_len >= 24 ? 0 : -1;
}

static int valid_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h)
        return 0;
    for (const char *p = h; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return 0;
    return strpbrk(colon, "\r\n") == NULL;
}

static int http_create(const struct mtr_host_api *host, mtr_ctx *ctx, void **state)
{
    for (size_t i = 0; i < host->get_list_len(ctx, "headers"); i++) {
        const char *h = host->get_list_item(ctx, "headers", i);
        if (!valid_header(h)) {
            host->set_error(ctx, "headers[%zu] must be \"Name: value\" on one line", i);
            return MTR_ERR;
        }
        if (strncasecmp(h, "content-length:", 15) == 0 ||
            strncasecmp(h, "transfer-encoding:", 18) == 0) {
            host->set_error(ctx, "headers[%zu]: the sink frames each request itself (%.*s)", i,
                            (int)strcspn(h, ":"), h);
            return MTR_ERR;
        }
    }
    struct http_sink *s = calloc(1, sizeof *s);
    if (!s) {
        host->set_error(ctx, "out of memory");
        return MTR_ERR;
    }
    *state = s;
    s->host = host;
    s->ctx = ctx;
    s->timeout_ms = host->get_duration_ms(ctx, "timeout");
    s->concurrency = host->get_int(ctx, "concurrency");
    s->max_body_bytes = host->get_size(ctx, "max_body_bytes");
    s->allow_private = host->get_bool(ctx, "allow_private_networks");
    s->standard_webhooks = host->get_bool(ctx, "standard_webhooks");
    s->ca_file = host->get_string(ctx, "ca_file");
    s->proxy = host->get_string(ctx, "proxy");
    s->url = host->get_string(ctx, "url");
    s->limits.max_in_flight = host->get_int(ctx, "max_in_flight");
    s->limits.max_rate = host->get_int(ctx, "max_rate");
    s->limits.pause_on_retry_after = host->get_bool(ctx, "pause_on_retry_after");
    if (s->url && strncmp(s->url, "https://", 8) != 0 && strncmp(s->url, "http://", 7) != 0) {
        host->set_error(ctx, "url '%.200s': want an http:// or https:// URL", s->url);
        return MTR_ERR;
    }
    if (sodium_init() < 0) {
        host->set_error(ctx, "libsodium failed to initialise");
        return MTR_ERR;
    }
    if (s->standard_webhooks &&
        read_sw_secret(s, host->get_string(ctx, "standard_webhooks_secret")) != 0) {
        host->set_error(ctx, "standard_webhooks needs standard_webhooks_secret: whsec_ followed "
                             "by base64 of 24 to 64 random bytes");
        return MTR_ERR;
    }
    return MTR_OK;
}

static int http_start(void *state)
{
    struct http_sink *s = state;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(s->multi = curl_multi_init())) {
        s->host->set_error(s->ctx, "libcurl failed to initialise");
        return MTR_ERR;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->concurrency);
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->concurrency);
    /* one thread uses the handles: the share needs no locks */
    if ((s->share = curl_share_init()) != NULL)
        curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return MTR_OK;
}

static void http_stop(void *state)
{
    struct http_sink *s = state;
    if (!s->multi)
        return;
    while (s->in_flight > 0) /* bounded by the timeout of each transfer */
        http_poll(s, 100);
    limits_free(&s->limits); /* nothing is held: the core waited for every outcome */
    plain_close_all(s);
    while (s->free_list) {
        struct transfer *t = s->free_list;
        s->free_list = t->next_free;
        transfer_free(t);
    }
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
    if (s->share)
        curl_share_cleanup(s->share);
    s->share = NULL;
    curl_global_cleanup();
}

static void http_destroy(void *state)
{
    struct http_sink *s = state;
    if (!s)
        return;
    http_stop(s);
    sodium_memzero(s->sw_key, sizeof s->sw_key);
    free(s);
}

static const struct mtr_sink_ops http_ops = {
    .struct_size = sizeof(struct mtr_sink_ops),
    .flags = MTR_SINK_CALLBACK,
    .submit = http_submit,
    .poll = http_poll,
    .max_body_bytes = http_max_body,
};

static const struct mtr_option http_options[] = {
    {.name = "timeout",
     .type = MTR_OPT_DURATION,
     .default_value = "15s",
     .min = 100,
     .max = 300000,
     .help = "a delivery without a 2xx within this has failed"},
    {.name = "concurrency",
     .type = MTR_OPT_INT,
     .default_value = "64",
     .min = 1,
     .max = 4096,
     .help = "deliveries in flight at once"},
    {.name = "max_body_bytes",
     .type = MTR_OPT_SIZE,
     .default_value = "1MiB",
     .min = 1024,
     .max = 1073741824,
     .help = "larger payloads are split by vehicles, never truncated"},
    {.name = "max_in_flight",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 4096,
     .help = "requests in flight at once to one receiver origin (scheme, host, port), shared by "
             "every webhook posting there; more wait their turn (0: no cap)"},
    {.name = "max_rate",
     .type = MTR_OPT_INT,
     .default_value = "0",
     .min = 0,
     .max = 100000,
     .help = "requests started a second to one receiver origin; more are deferred, without "
             "counting as attempts, to the seconds after (0: no cap)"},
    {.name = "pause_on_retry_after",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = "a 429 or 503 with Retry-After pauses the receiver's origin that long and is not "
             "counted against the delivery's retries; deliveries wait for at most a day"},
    {.name = "headers",
     .type = MTR_OPT_LIST,
     .help = "extra request headers, \"Name: value\" (not Content-Length or Transfer-Encoding)"},
    {.name = "allow_private_networks",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = "allow loopback, private, link-local and metadata addresses"},
    {.name = "ca_file", .type = MTR_OPT_STRING, .help = "CA bundle to verify TLS peers with"},
    {.name = "url",
     .type = MTR_OPT_STRING,
     .help = "POST every delivery here instead of the webhook's callback URI: for a sink in "
             "events.sinks (an operator's endpoint), which has no callback URI"},
    {.name = "proxy",
     .type = MTR_OPT_STRING,
     .help = "HTTP(S) proxy URL; the environment's http_proxy and HTTPS_PROXY are never used, "
             "and the target is still checked"},
    {.name = "standard_webhooks",
     .type = MTR_OPT_BOOL,
     .default_value = "false",
     .help = "also send webhook-id, webhook-timestamp and webhook-signature"},
    {.name = "standard_webhooks_secret",
     .type = MTR_OPT_SECRET,
     .help = "whsec_... key for webhook-signature"},
    {0},
};

static const struct mtr_plugin http_plugin = {
    MTR_PLUGIN_HEADER(MTR_KIND_SINK),
    .name = "http",
    .version = "1.0.0",
    .description = "POST to the webhook's callback URI (TLS verified, SSRF guarded)",
    .options = http_options,
    .create = http_create,
    .start = http_start,
    .stop = http_stop,
    .destroy = http_destroy,
    .sink = &http_ops,
};

MTR_PLUGIN_DEFINE(http_plugin)
