/* Receiver: libmicrohttpd with one internal polling thread. A request's body
 * is collected across calls of the access handler; the answer is decided by
 * the script when the body is complete. */
#include "receiver.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct request {
    char *body;
    size_t len;
};

static void hmac_hex(const char *key, const char *msg, size_t len, char out[65])
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, 65, mac, sizeof mac);
}

static struct receiver_rule next_rule(struct receiver *r)
{
    if (r->script_pos < r->n_script)
        return r->script[r->script_pos++];
    return r->dflt;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Records a request; returns how many times its delivery id arrived. */
static enum MHD_Result add_header_line(void *arg, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    char **all = arg;
    size_t have = *all ? strlen(*all) : 0, add = strlen(key) + 2 + (value ? strlen(value) : 0) + 1;
    char *p = realloc(*all, have + add + 1);
    (void)kind;
    if (!p)
        return MHD_NO;
    snprintf(p + have, add + 1, "%s: %s\n", key, value ? value : "");
    *all = p;
    return MHD_YES;
}

/* Every request header, one "Name: value" line each. */
static char *all_headers(struct MHD_Connection *c)
{
    char *all = NULL;
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header_line, &all);
    return all;
}

static size_t slot_of(const struct receiver *r, const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    size_t i = (size_t)h & (r->cap_seen - 1);
    while (r->seen[i].id && strcmp(r->seen[i].id, id) != 0)
        i = (i + 1) & (r->cap_seen - 1);
    return i;
}

/* The arrival's number for this delivery id (1 for the first); id is kept
 * by reference (a log entry owns it). The table stays at most half full, so
 * a thousand-fold fleet does not make each arrival scan all before it. */
static int arrival(struct receiver *r, const char *id)
{
    if (!id)
        return 1;
    if (2 * (r->n_seen + 1) > r->cap_seen) {
        struct seen_id *old = r->seen;
        size_t old_cap = r->cap_seen, cap = old_cap ? old_cap * 2 : 1024;
        struct seen_id *grown = calloc(cap, sizeof *grown);
        if (!grown)
            return 1;
        r->seen = grown;
        r->cap_seen = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].id)
                r->seen[slot_of(r, old[i].id)] = old[i];
        free(old);
    }
    size_t i = slot_of(r, id);
    if (!r->seen[i].id) {
        r->seen[i].id = id;
        r->n_seen++;
    }
    return ++r->seen[i].n;
}

static int record(struct receiver *r, struct MHD_Connection *c, const char *id, const char *event,
                  const char *body, size_t len, int sig_ok, int status, int vehicles)
{
    int n = 1;
    if (r->n_log == r->cap_log) {
        size_t cap = r->cap_log ? r->cap_log * 2 : 64;
        struct received *p = realloc(r->log, cap * sizeof *p);
        if (!p)
            return n;
        r->log = p;
        r->cap_log = cap;
    }
    struct received *x = &r->log[r->n_log++];
    x->delivery_id = dup_str(id);
    n = arrival(r, x->delivery_id);
    x->event = dup_str(event);
    r->n_scheduled += event && strcmp(event, "scheduled") == 0;
    x->body = malloc(len + 1);
    if (x->body) {
        memcpy(x->body, body, len);
        x->body[len] = '\0';
    }
    x->len = len;
    x->signature_ok = sig_ok;
    x->status = status;
    x->vehicles = vehicles;
    x->attempt_n = n;
    x->webhook_id = dup_str(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id"));
    x->webhook_timestamp =
        dup_str(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp"));
    x->webhook_signature =
        dup_str(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature"));
    x->headers = all_headers(c);
    if (r->log_file) {
        fprintf(r->log_file,
                "{\"deliveryId\":\"%s\",\"event\":\"%s\",\"signatureOk\":%s,\"status\":%d,"
                "\"vehicles\":%d,\"arrival\":%d}\n",
                id ? id : "", event ? event : "", sig_ok ? "true" : "false", status, vehicles, n);
        fflush(r->log_file);
    }
    return n;
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *body,
                              int retry_after, const char *retry_after_text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (retry_after_text)
        MHD_add_response_header(resp, "Retry-After", retry_after_text);
    else if (retry_after >= 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result handle(struct receiver *r, struct MHD_Connection *c, struct request *q)
{
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "SC-Signature");
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Metronome-Delivery-Id");
    char expected[65], reply[160] = "{}";
    hmac_hex(r->token, q->body ? q->body : "", q->len, expected);
    int sig_ok = sig && strcmp(sig, expected) == 0;
    json_error_t je;
    json_t *v = json_loadb(q->body ? q->body : "", q->len, 0, &je);
    const char *event = json_string_value(json_object_get(v, "eventName"));
    int vehicles = (int)json_array_size(json_object_get(json_object_get(v, "payload"), "vehicles"));
    int is_verify = event && strcmp(event, "verify") == 0;
    pthread_mutex_lock(&r->mu);
    struct receiver_rule rule = is_verify ? r->verify_rule : next_rule(r);
    if (r->flaky_every && !is_verify && (r->n_scheduled + 1) % r->flaky_every == 0)
        rule = (struct receiver_rule){.mode = RECV_RESPOND, .status = 503, .retry_after = -1};
    int status = rule.mode == RECV_RESPOND || rule.mode == RECV_WRONG_CHALLENGE ? rule.status : 0;
    if (rule.mode == RECV_HANG)
        status = rule.status;
    record(r, c, id, event, q->body ? q->body : "", q->len, sig_ok, status, vehicles);
    if (!is_verify && ++r->active > r->max_active)
        r->max_active = r->active;
    pthread_mutex_unlock(&r->mu);
    if (is_verify) {
        const char *challenge =
            json_string_value(json_object_get(json_object_get(v, "payload"), "challenge"));
        hmac_hex(rule.mode == RECV_WRONG_CHALLENGE ? "not-the-token" : r->token,
                 challenge ? challenge : "", challenge ? strlen(challenge) : 0, expected);
        snprintf(reply, sizeof reply, "{\"challenge\":\"%s\"}", expected);
    }
    json_decref(v);
    if (rule.mode == RECV_HANG) {
        struct timespec ts = {rule.hang_ms / 1000, (long)(rule.hang_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&r->mu);
    r->active -= !is_verify;
    pthread_mutex_unlock(&r->mu);
    if (rule.mode == RECV_DROP)
        return MHD_NO; /* closes the connection without an answer */
    return answer(c, status ? status : 200, reply, rule.retry_after, rule.retry_after_text);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    struct receiver *r = cls;
    struct request *q = *con_cls;
    (void)url;
    (void)version;
    if (!q) {
        if (!(q = calloc(1, sizeof *q)))
            return MHD_NO;
        *con_cls = q;
        return MHD_YES;
    }
    if (*size) {
        char *p = realloc(q->body, q->len + *size + 1);
        if (!p)
            return MHD_NO;
        memcpy(p + q->len, data, *size);
        q->body = p;
        q->len += *size;
        q->body[q->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0)
        return answer(c, 405, "{\"error\":\"method\"}", -1, NULL);
    return handle(r, c, q);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct request *q = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (q) {
        free(q->body);
        free(q);
        *con_cls = NULL;
    }
}

int receiver_start(struct receiver *r, unsigned short port, const char *token)
{
    return receiver_start_tls(r, port, token, NULL, NULL);
}

int receiver_start_tls(struct receiver *r, unsigned short port, const char *token,
                       const char *cert_pem, const char *key_pem)
{
    memset(r, 0, sizeof *r);
    if (sodium_init() < 0)
        return -1;
    pthread_mutex_init(&r->mu, NULL);
    snprintf(r->token, sizeof r->token, "%s", token);
    r->dflt = (struct receiver_rule){.mode = RECV_RESPOND, .status = 200, .retry_after = -1};
    r->verify_rule = r->dflt;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION;
    if (cert_pem && key_pem) {
        r->tls_cert = strdup(cert_pem);
        r->tls_key = strdup(key_pem);
        if (!r->tls_cert || !r->tls_key)
            return -1;
        r->mhd =
            MHD_start_daemon(flags | MHD_USE_TLS, port, NULL, NULL, on_request, r,
                             MHD_OPTION_SOCK_ADDR, &addr, MHD_OPTION_NOTIFY_COMPLETED, on_done, r,
                             MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_HTTPS_MEM_CERT,
                             r->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, r->tls_key, MHD_OPTION_END);
    } else {
        r->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR,
                                  &addr, MHD_OPTION_NOTIFY_COMPLETED, on_done, r,
                                  MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    }
    if (!r->mhd)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->mhd, MHD_DAEMON_INFO_BIND_PORT);
    r->port = info ? info->port : port;
    return 0;
}

void receiver_stop(struct receiver *r)
{
    if (r->mhd)
        MHD_stop_daemon(r->mhd);
    r->mhd = NULL;
    for (size_t i = 0; i < r->n_log; i++)
        received_free(&r->log[i]);
    free(r->log);
    free(r->seen);
    free(r->script);
    free(r->tls_cert);
    free(r->tls_key);
    r->tls_cert = r->tls_key = NULL;
    r->seen = NULL;
    r->n_seen = r->cap_seen = r->n_scheduled = 0;
    r->log = NULL;
    r->script = NULL;
    r->n_log = r->n_script = 0;
    pthread_mutex_destroy(&r->mu);
}

void receiver_script(struct receiver *r, const struct receiver_rule *rules, size_t n)
{
    pthread_mutex_lock(&r->mu);
    free(r->script);
    r->script = malloc(n * sizeof *rules);
    if (r->script)
        memcpy(r->script, rules, n * sizeof *rules);
    r->n_script = r->script ? n : 0;
    r->script_pos = 0;
    pthread_mutex_unlock(&r->mu);
}

void receiver_default(struct receiver *r, struct receiver_rule rule)
{
    pthread_mutex_lock(&r->mu);
    r->dflt = rule;
    pthread_mutex_unlock(&r->mu);
}

void receiver_verify_rule(struct receiver *r, struct receiver_rule rule)
{
    pthread_mutex_lock(&r->mu);
    r->verify_rule = rule;
    pthread_mutex_unlock(&r->mu);
}

size_t receiver_max_active(struct receiver *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->max_active;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t receiver_count(struct receiver *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->n_log;
    pthread_mutex_unlock(&r->mu);
    return n;
}

size_t receiver_count_event(struct receiver *r, const char *event)
{
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->n_log; i++)
        n += r->log[i].event && strcmp(r->log[i].event, event) == 0;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int receiver_get(struct receiver *r, size_t i, struct received *out)
{
    int rc = -1;
    pthread_mutex_lock(&r->mu);
    if (i < r->n_log) {
        const struct received *x = &r->log[i];
        *out = *x;
        out->delivery_id = dup_str(x->delivery_id);
        out->event = dup_str(x->event);
        out->body = dup_str(x->body);
        out->webhook_id = dup_str(x->webhook_id);
        out->webhook_timestamp = dup_str(x->webhook_timestamp);
        out->webhook_signature = dup_str(x->webhook_signature);
        out->headers = dup_str(x->headers);
        rc = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int receiver_get_payload(struct receiver *r, size_t i, struct received *out)
{
    size_t n = receiver_count(r);
    for (size_t k = 0; k < n; k++) {
        struct received x;
        if (receiver_get(r, k, &x) != 0)
            return -1;
        if (x.event && strcmp(x.event, "scheduled") == 0 && i-- == 0) {
            *out = x;
            return 0;
        }
        received_free(&x);
    }
    return -1;
}

void received_free(struct received *x)
{
    free(x->delivery_id);
    free(x->event);
    free(x->body);
    free(x->webhook_id);
    free(x->webhook_timestamp);
    free(x->webhook_signature);
    free(x->headers);
    x->delivery_id = x->event = x->body = NULL;
    x->webhook_id = x->webhook_timestamp = x->webhook_signature = x->headers = NULL;
}
