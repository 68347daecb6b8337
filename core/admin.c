/* The admin API over HTTP: libmicrohttpd's internal thread pool (one thread
 * per store connection the API holds), the raw request target taken from the
 * URI log callback (so percent-escapes reach api.c's strict parser as sent,
 * not decoded by the server), request bodies collected up to 1 MiB and the
 * rest refused with 413 unread. Responses never carry CORS headers: the API
 * is for operators and the page served beside it, not for other origins. */
#include "admin.h"
#include "api.h"
#include "log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define CONNECTION_MEMORY (64 * 1024) /* headers and MHD's buffers; bodies are ours */
#define CONNECTION_TIMEOUT_S 30u
#define CONNECTION_LIMIT 256u

struct admin {
    struct MHD_Daemon *mhd;
    struct api *api;
    char address[160];
    char *tls_key, *tls_cert;
};

/* One request in progress. */
struct exchange {
    char *target;
    char *body;
    size_t len, cap;
    int too_large;
    int headers_seen; /* the first call (headers only) has been made */
};

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
    struct exchange *x = calloc(1, sizeof *x);
    (void)cls;
    (void)con;
    if (x)
        x->target = strdup(uri ? uri : "");
    return x;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    struct exchange *x = *con_cls;
    (void)cls;
    (void)con;
    (void)why;
    if (x) {
        free(x->target);
        free(x->body);
        free(x);
    }
    *con_cls = NULL;
}

static int keep_body(struct exchange *x, const char *data, size_t size)
{
    if (x->too_large || x->len + size > API_MAX_BODY) {
        x->too_large = 1;
        return 0;
    }
    if (x->len + size + 1 > x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 4096;
        while (cap < x->len + size + 1)
            cap *= 2;
        char *p = realloc(x->body, cap);
        if (!p)
            return -1;
        x->body = p;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, size);
    x->len += size;
    x->body[x->len] = '\0';
    return 0;
}

static enum MHD_Result send_response(struct MHD_Connection *con, const struct api_response *rs)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(rs->body_len, rs->body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", rs->content_type);
    MHD_add_response_header(r, "Cache-Control", rs->cache_control ? rs->cache_control : "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            rs->csp ? rs->csp : "default-src 'none'; frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    if (rs->request_id[0])
        MHD_add_response_header(r, "sc-request-id", rs->request_id);
    if (rs->www_authenticate)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"metronome\"");
    if (rs->allow[0])
        MHD_add_response_header(r, "Allow", rs->allow);
    enum MHD_Result ok = MHD_queue_response(con, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ok;
}

/* A body announced larger than the cap is refused before it is read. */
static int announced_too_large(struct MHD_Connection *con)
{
    const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
    if (!cl)
        return 0;
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);
    return *end != '\0' || n > API_MAX_BODY;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct admin *a = cls;
    struct exchange *x = *con_cls;
    (void)url;
    (void)version;
    if (!x)
        return MHD_NO;
    if (!x->headers_seen) { /* headers only: the body, if any, comes in the next calls */
        x->headers_seen = 1;
        if (!announced_too_large(con))
            return MHD_YES;
        x->too_large = 1;           /* answered now, the body never read */
    } else if (*upload_data_size) { /* part of the body: keep it (or count it as too much) */
        int rc = keep_body(x, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return rc == 0 ? MHD_YES : MHD_NO;
    }
    struct api_request rq = {
        .method = method,
        .target = x->target,
        .authorization = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization"),
        .body = x->body ? x->body : "",
        .body_len = x->len,
        .body_too_large = x->too_large,
    };
    struct api_response rs;
    api_handle(a->api, &rq, &rs);
    enum MHD_Result ok = send_response(con, &rs);
    api_response_free(&rs);
    return ok;
}

/* ---- start and stop ----------------------------------------------------------------------- */

static char *read_pem(const char *path, struct diag *d)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    char *buf = NULL;
    if (!f || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (1 << 20)) {
        diag_set(d, "%s: cannot read (a PEM file of at most 1 MiB)", path);
    } else if ((buf = calloc(1, (size_t)sb.st_size + 1)) &&
               fread(buf, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) {
        diag_set(d, "%s: cannot read", path);
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

/* Resolves HOST:PORT (host a name, an IPv4 or a [bracketed] IPv6 literal). */
static int resolve(const char *listen, struct sockaddr_storage *out, socklen_t *len, int *v6,
                   struct diag *d)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t n = (size_t)(colon - listen);
    if (n >= sizeof host)
        return diag_set(d, "admin.listen: host too long");
    memcpy(host, listen, n);
    host[n] = '\0';
    if (host[0] == '[' && n > 1 && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0)
        return diag_set(d, "admin.listen '%s': %s", listen, gai_strerror(rc));
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return 0;
}

static void format_address(struct admin *a, const struct sockaddr_storage *ss, int v6,
                           unsigned port)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (v6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof ip);
    else
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, ip, sizeof ip);
    snprintf(a->address, sizeof a->address, "%s%s%s:%u", v6 ? "[" : "", ip, v6 ? "]" : "", port);
}

struct admin *admin_start(struct config *c, struct clock *clk, struct engine *e, struct diag *d)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    int v6 = 0;
    struct admin *a = calloc(1, sizeof *a);
    if (!a) {
        diag_set(d, "out of memory");
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    if (resolve(c->admin.listen, &ss, &sslen, &v6, d) != 0)
        goto fail;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (c->admin.tls_cert) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            diag_set(d, "this libmicrohttpd has no TLS; remove admin.tls_cert and tls_key");
            goto fail;
        }
        if (!(a->tls_cert = read_pem(c->admin.tls_cert, d)) ||
            !(a->tls_key = read_pem(c->admin.tls_key, d)))
            goto fail;
        flags |= MHD_USE_TLS;
    }
    if (!(a->api = api_create(c, clk, e, d)))
        goto fail;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_KEY, 0, a->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, a->tls_cert},
        {MHD_OPTION_END, 0, NULL},
    };
    a->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)API_CONTEXTS, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
        MHD_OPTION_CONNECTION_LIMIT, CONNECTION_LIMIT, MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_ARRAY, a->tls_cert ? tls : tls + 2,
        MHD_OPTION_END);
    if (!a->mhd) {
        diag_set(d, "cannot listen on %s (in use, or not an address of this machine%s)",
                 c->admin.listen,
                 a->tls_cert ? ", or the TLS key and certificate do not load" : "");
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    format_address(a, &ss, v6, info ? info->port : 0);
    return a;
fail:
    admin_stop(a);
    return NULL;
}

const char *admin_address(const struct admin *a)
{
    return a->address;
}

void admin_stop(struct admin *a)
{
    if (!a)
        return;
    if (a->mhd)
        MHD_stop_daemon(a->mhd);
    api_destroy(a->api);
    free(a->tls_cert);
    if (a->tls_key) {
        memset(a->tls_key, 0, strlen(a->tls_key));
        free(a->tls_key);
    }
    free(a);
}

/* ---- the client: metronome status
 * ---------------------------------------------------------------- */

struct reply {
    char *p;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t add = size * n;
    if (r->len + add > (4u << 20))
        return 0;
    char *p = realloc(r->p, r->len + add + 1);
    if (!p)
        return 0;
    memcpy(p + r->len, ptr, add);
    r->p = p;
    r->len += add;
    r->p[r->len] = '\0';
    return add;
}

int admin_fetch_status(const struct config *c, json_t **out, char *err, size_t errlen)
{
    char url[400], auth[1200], host[300];
    const char *colon = strrchr(c->admin.listen, ':');
    size_t n = (size_t)(colon - c->admin.listen);
    *out = NULL;
    if (strcmp(colon + 1, "0") == 0) {
        snprintf(err, errlen, "admin.listen has port 0, so the daemon's port is in its log only");
        return -1;
    }
    snprintf(host, sizeof host, "%.*s", (int)(n < 256 ? n : 256), c->admin.listen);
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "[::]") == 0)
        snprintf(host, sizeof host, "[::1]");
    snprintf(url, sizeof url, "%s://%s%s/api/v1/status", c->admin.tls_cert ? "https" : "http", host,
             colon);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->admin.token);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    struct reply r = {0};
    long status = 0;
    char cerr[CURL_ERROR_SIZE] = "";
    if (!h || !hdr) {
        snprintf(err, errlen, "out of memory");
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    if (c->admin.tls_cert) /* the daemon's own certificate is the trust anchor */
        curl_easy_setopt(h, CURLOPT_CAINFO, c->admin.tls_cert);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    json_error_t je;
    if (rc != CURLE_OK)
        snprintf(err, errlen, "no metronome answers at %s: %s (is `metronome run` running?)", url,
                 cerr[0] ? cerr : curl_easy_strerror(rc));
    else if (!(*out = json_loadb(r.p ? r.p : "", r.len, 0, &je)))
        snprintf(err, errlen, "%s answered HTTP %ld, not JSON", url, status);
    else if (status != 200) {
        snprintf(err, errlen, "%s answered HTTP %ld: %s", url, status,
                 json_string_value(json_object_get(*out, "message"))
                     ? json_string_value(json_object_get(*out, "message"))
                     : "?");
        json_decref(*out);
        *out = NULL;
    }
    free(r.p);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return *out ? 0 : -1;
}
