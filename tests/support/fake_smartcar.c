/* Fake Smartcar API: one handler dispatching on method and path; bodies are
 * collected across calls; all state is under one mutex. */
#include "fake_smartcar.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct body {
    char *p;
    size_t len;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *json,
                             int retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "SC-Request-Id", "fake-request-id");
    if (retry_after >= 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        MHD_add_response_header(r, "retry-after", v);
    }
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static const char *error_json(const char *type, const char *code, int status,
                              const char *resolution, char *buf, size_t len)
{
    snprintf(buf, len,
             "{\"type\":\"%s\",\"code\":%s%s%s,\"description\":\"fake %s\","
             "\"docURL\":\"https://smartcar.com/docs/errors\",\"statusCode\":%d,"
             "\"requestId\":\"fake-request-id\",\"resolution\":{\"type\":%s%s%s}}",
             type, code ? "\"" : "", code ? code : "null", code ? "\"" : "", type, status,
             resolution ? "\"" : "", resolution ? resolution : "null", resolution ? "\"" : "");
    return buf;
}

static struct fake_vehicle *by_id(struct fake_smartcar *f, const char *id, size_t len)
{
    for (size_t i = 0; i < f->n; i++)
        if (strlen(f->v[i].id) == len && strncmp(f->v[i].id, id, len) == 0)
            return &f->v[i];
    return NULL;
}

static const char *bearer(struct MHD_Connection *c)
{
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return a && strncmp(a, "Bearer ", 7) == 0 ? a + 7 : "";
}

/* The body of one endpoint for a vehicle, in the requested units. */
static void endpoint_body(const char *path, int imperial, char *buf, size_t len)
{
    if (strcmp(path, "/odometer") == 0)
        snprintf(buf, len, "{\"distance\":%s}", imperial ? "23506.77" : "37830.1");
    else if (strcmp(path, "/battery") == 0)
        snprintf(buf, len, "{\"range\":%s,\"percentRemaining\":0.58}",
                 imperial ? "176.03" : "283.244544");
    else if (strcmp(path, "/location") == 0)
        snprintf(buf, len, "{\"latitude\":37.4292,\"longitude\":-122.1381}");
    else
        snprintf(buf, len, "{\"value\":1}");
}

static enum MHD_Result batch(struct fake_smartcar *f, struct MHD_Connection *c, const char *url,
                             const struct body *b)
{
    const char *id = url + strlen("/v2.0/vehicles/");
    const char *slash = strchr(id, '/');
    char buf[8192], err[1024];
    f->batch_requests++;
    struct fake_vehicle *v = slash ? by_id(f, id, (size_t)(slash - id)) : NULL;
    if (!v)
        return reply(c, 404, error_json("RESOURCE_NOT_FOUND", "PATH", 404, NULL, err, sizeof err),
                     -1);
    if (strcmp(bearer(c), v->access) != 0)
        return reply(
            c, 401, error_json("AUTHENTICATION", NULL, 401, "REAUTHENTICATE", err, sizeof err), -1);
    if (f->rate_limited > 0) {
        f->rate_limited--;
        return reply(c, 429,
                     error_json("RATE_LIMIT", "VEHICLE", 429, "RETRY_LATER", err, sizeof err),
                     f->retry_after);
    }
    v->batches++;
    const char *units = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "SC-Unit-System");
    snprintf(v->last_units, sizeof v->last_units, "%s", units ? units : "");
    int imperial = units && strcmp(units, "imperial") == 0;
    if (v->malformed)
        return reply(c, 200, "{\"responses\":[{\"path\":\"/odometer\",\"code\":200,\"bo", -1);
    json_error_t je;
    json_t *req = json_loadb(b->p ? b->p : "", b->len, 0, &je);
    json_t *paths = json_object_get(req, "requests");
    size_t used = (size_t)snprintf(buf, sizeof buf, "{\"responses\":[");
    size_t i;
    json_t *p;
    int asleep = v->asleep > 0;
    json_array_foreach(paths, i, p)
    {
        const char *path = json_string_value(json_object_get(p, "path"));
        char body[512];
        if (!path)
            continue;
        if (asleep)
            used += (size_t)snprintf(
                buf + used, sizeof buf - used,
                "%s{\"path\":\"%s\",\"code\":409,\"body\":%s,\"headers\":{\"content-type\":"
                "\"application/json\"}}",
                i ? "," : "", path,
                error_json("VEHICLE_STATE", "ASLEEP", 409, "RETRY_LATER", err, sizeof err));
        else {
            endpoint_body(path, imperial, body, sizeof body);
            used += (size_t)snprintf(
                buf + used, sizeof buf - used,
                "%s{\"path\":\"%s\",\"code\":200,\"body\":%s,\"headers\":{\"sc-data-age\":"
                "\"2030-03-01T15:59:00.000Z\",\"sc-unit-system\":\"%s\"}}",
                i ? "," : "", path, body, imperial ? "imperial" : "metric");
        }
    }
    snprintf(buf + used, sizeof buf - used, "]}");
    if (asleep)
        v->asleep--;
    json_decref(req);
    return reply(c, 200, buf, -1);
}

/* The value of key in an x-www-form-urlencoded body (no escapes needed here). */
static int form_value(const struct body *b, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key);
    const char *p = b->p;
    while (p && *p) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            const char *v = p + klen + 1, *end = strchr(v, '&');
            size_t n = end ? (size_t)(end - v) : strlen(v);
            snprintf(out, len, "%.*s", (int)n, v);
            return 0;
        }
        p = strchr(p, '&');
        p = p ? p + 1 : NULL;
    }
    return -1;
}

static int basic_ok(struct MHD_Connection *c)
{
    char expected[256], b64[256];
    snprintf(expected, sizeof expected, "%s:%s", FAKE_CLIENT_ID, FAKE_CLIENT_SECRET);
    sodium_bin2base64(b64, sizeof b64, (const unsigned char *)expected, strlen(expected),
                      sodium_base64_VARIANT_ORIGINAL);
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    return a && strncmp(a, "Basic ", 6) == 0 && strcmp(a + 6, b64) == 0;
}

static enum MHD_Result token(struct fake_smartcar *f, struct MHD_Connection *c,
                             const struct body *b)
{
    char grant[64] = "", value[256] = "", buf[512];
    static const char invalid[] =
        "{\"error\":\"invalid_grant\",\"error_description\":\"fake: token not valid\"}";
    if (!basic_ok(c))
        return reply(c, 401, "{\"error\":\"invalid_client\"}", -1);
    form_value(b, "grant_type", grant, sizeof grant);
    if (strcmp(grant, "refresh_token") == 0) {
        f->refreshes++;
        f->refresh_basic_ok++;
        form_value(b, "refresh_token", value, sizeof value);
        for (size_t i = 0; !f->reject_refresh && i < f->n; i++)
            if (strcmp(f->v[i].refresh, value) == 0) {
                char id[64];
                int seq = ++f->seq;
                snprintf(id, sizeof id, "%s", f->v[i].id);
                snprintf(f->v[i].access, sizeof f->v[i].access, "at-%.40s-%d", id, seq);
                snprintf(f->v[i].refresh, sizeof f->v[i].refresh, "rt-%.40s-%d", id, seq);
                snprintf(buf, sizeof buf,
                         "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":7200,"
                         "\"refresh_token\":\"%s\"}",
                         f->v[i].access, f->v[i].refresh);
                return reply(c, 200, buf, -1);
            }
        return reply(c, 400, invalid, -1);
    }
    if (strcmp(grant, "authorization_code") == 0) {
        f->exchanges++;
        form_value(b, "code", value, sizeof value);
        if (strcmp(value, FAKE_CODE) != 0)
            return reply(c, 400, invalid, -1);
        /* one user owns every vehicle: they all take the user's tokens */
        for (size_t i = 0; i < f->n; i++) {
            snprintf(f->v[i].access, sizeof f->v[i].access, "at-user");
            snprintf(f->v[i].refresh, sizeof f->v[i].refresh, "rt-user");
        }
        return reply(c, 200,
                     "{\"access_token\":\"at-user\",\"token_type\":\"Bearer\",\"expires_in\":7200,"
                     "\"refresh_token\":\"rt-user\"}",
                     -1);
    }
    return reply(c, 400, "{\"error\":\"unsupported_grant_type\"}", -1);
}

static enum MHD_Result list(struct fake_smartcar *f, struct MHD_Connection *c)
{
    const char *lim = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    const char *off = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "offset");
    size_t limit = lim ? (size_t)strtoul(lim, NULL, 10) : 10,
           offset = off ? strtoul(off, NULL, 10) : 0;
    char buf[4096];
    f->list_requests++;
    if (limit > 2)
        limit = 2; /* small pages, so the client must page */
    int ok = 0;
    for (size_t i = 0; i < f->n; i++)
        ok |= strcmp(bearer(c), f->v[i].access) == 0;
    if (!ok && strcmp(bearer(c), "at-user") != 0)
        return reply(c, 401, "{\"type\":\"AUTHENTICATION\",\"code\":null}", -1);
    size_t used = (size_t)snprintf(buf, sizeof buf, "{\"vehicles\":[");
    for (size_t i = offset; i < f->n && i < offset + limit; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s\"%s\"", i > offset ? "," : "",
                                 f->v[i].id);
    snprintf(buf + used, sizeof buf - used, "],\"paging\":{\"count\":%zu,\"offset\":%zu}}", f->n,
             offset);
    return reply(c, 200, buf, -1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    struct fake_smartcar *f = cls;
    struct body *b = *con_cls;
    (void)version;
    if (!b) {
        if (!(b = calloc(1, sizeof *b)))
            return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*size) {
        char *p = realloc(b->p, b->len + *size + 1);
        if (!p)
            return MHD_NO;
        memcpy(p + b->len, data, *size);
        b->p = p;
        b->len += *size;
        p[b->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&f->mu);
    enum MHD_Result rc;
    if (strcmp(method, "POST") == 0 && strncmp(url, "/v2.0/vehicles/", 15) == 0 &&
        strstr(url, "/batch"))
        rc = batch(f, c, url, b);
    else if (strcmp(method, "POST") == 0 && strcmp(url, "/oauth/token") == 0)
        rc = token(f, c, b);
    else if (strcmp(method, "GET") == 0 && strcmp(url, "/v2.0/vehicles") == 0)
        rc = list(f, c);
    else
        rc = reply(c, 404, "{\"type\":\"RESOURCE_NOT_FOUND\",\"code\":\"PATH\"}", -1);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct body *b = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (b) {
        free(b->p);
        free(b);
        *con_cls = NULL;
    }
}

int fake_start(struct fake_smartcar *f)
{
    memset(f, 0, sizeof *f);
    if (sodium_init() < 0)
        return -1;
    pthread_mutex_init(&f->mu, NULL);
    f->retry_after = 60;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
                              NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR, &addr,
                              MHD_OPTION_NOTIFY_COMPLETED, on_done, f, MHD_OPTION_END);
    if (!f->mhd)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->mhd, MHD_DAEMON_INFO_BIND_PORT);
    f->port = info ? info->port : 0;
    return 0;
}

void fake_stop(struct fake_smartcar *f)
{
    if (f->mhd)
        MHD_stop_daemon(f->mhd);
    f->mhd = NULL;
    pthread_mutex_destroy(&f->mu);
}

struct fake_vehicle *fake_add(struct fake_smartcar *f, const char *id)
{
    pthread_mutex_lock(&f->mu);
    struct fake_vehicle *v = &f->v[f->n++];
    memset(v, 0, sizeof *v);
    snprintf(v->id, sizeof v->id, "%s", id);
    snprintf(v->access, sizeof v->access, "at-%s", id);
    snprintf(v->refresh, sizeof v->refresh, "rt-%s", id);
    pthread_mutex_unlock(&f->mu);
    return v;
}

void fake_snapshot(struct fake_smartcar *f, struct fake_smartcar *copy)
{
    pthread_mutex_lock(&f->mu);
    memcpy(copy, f, sizeof *copy);
    pthread_mutex_unlock(&f->mu);
}
