/* The sink's own HTTP/1.1 connections (plain.h). A connection is opened by a
 * libcurl connect-only transfer; a plain one is adopted (its socket
 * duplicated, libcurl's handle dropped), a TLS one keeps its handle in the
 * multi, which carries its bytes. Either carries one request at a time: the
 * head and body go out together, the answer is read with response.h, and a
 * connection the answer leaves open goes back to its pool. Connections are
 * at most the sink's concurrency; one idle past IDLE_MAX_S is closed rather
 * than reused. */
#include "plain.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define IDLE_MAX_S 118 /* libcurl's own limit on reusing a kept connection */
#define BUCKETS 64
#define READ_MIN 4096

/* The kept connections to one host[:port]. */
struct pool {
    struct pool *next; /* in its bucket */
    struct conn *idle; /* most recently used first */
    char key[];
};

struct conn {
    enum handle_kind kind; /* KIND_CONN, first */
    int fd;                /* -1 while connecting */
    CURL *connecting;      /* the connect-only transfer, until it ends */
    CURL *tls;             /* https: the connect-only handle that holds the TLS session */
    struct pool *pool;
    struct transfer *t; /* the request it carries; NULL when idle */
    int idle;
    int64_t served;  /* answers read on it */
    size_t sent;     /* bytes of t's head and body written */
    size_t received; /* bytes of t's answer read */
    char *buf;       /* read and not yet consumed */
    size_t len, cap;
    struct response answer;
    struct timespec idle_since;
    struct conn *next_idle;
    struct conn *prev, *next; /* in plain.all */
};

/* ---- targets and requests --------------------------------------------------------------- */

static int plain_byte(char c)
{
    return (unsigned char)c > 0x20 && (unsigned char)c < 0x7f;
}

int plain_takes(const struct http_sink *s, struct transfer *t, const char *target,
                const char **path, size_t *path_len)
{
    int tls = strncasecmp(target, "https://", 8) == 0;
    if (s->proxy || (!tls && strncasecmp(target, "http://", 7) != 0))
        return 0;
    const char *a = target + (tls ? 8 : 7), *p = a;
    for (; *p && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == '@' || !plain_byte(*p))
            return 0; /* user info, or bytes libcurl would have to encode */
    size_t len = (size_t)(p - a);
    if (!len || len >= sizeof t->authority)
        return 0;
    const char *q = p;
    for (; *q && *q != '#'; q++)
        if (!plain_byte(*q))
            return 0;
    memcpy(t->authority, a, len);
    t->authority[len] = '\0';
    t->tls = tls;
    *path = p;
    *path_len = (size_t)(q - p);
    return 1;
}

static char *put(char *w, const char *p, size_t n)
{
    memcpy(w, p, n);
    return w + n;
}

static char *put_size(char *w, size_t v)
{
    char digits[24];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *w++ = digits[--n];
    return w;
}

/* A header line libcurl reads as "remove this header" ("Name:" and nothing after). */
static int removal(const char *line)
{
    const char *colon = strchr(line, ':');
    return colon && colon[1] == '\0';
}

/* t's request head: the request line, Host (unless a header names its
 * own), Content-Length, then t's header list. -1 without memory. */
static int build_request(struct transfer *t, const char *path, size_t path_len)
{
    size_t need = 64 + path_len + strlen(t->authority) + (t->tls ? t->body_len : 0);
    int own_host = 1;
    for (const struct curl_slist *n = t->nodes; n; n = n->next) {
        need += strlen(n->data) + 2;
        own_host &= strncasecmp(n->data, "host:", 5) != 0;
    }
    if (need > t->request_cap) {
        char *r = realloc(t->request, need);
        if (!r)
            return -1;
        t->request = r;
        t->request_cap = need;
    }
    char *w = put(t->request, "POST ", 5);
    if (!path_len || path[0] == '?')
        *w++ = '/';
    w = put(w, path, path_len);
    w = put(w, " HTTP/1.1\r\n", 11);
    if (own_host) {
        w = put(w, "Host: ", 6);
        w = put(w, t->authority, strlen(t->authority));
        w = put(w, "\r\n", 2);
    }
    w = put_size(put(w, "Content-Length: ", 16), t->body_len);
    w = put(w, "\r\n", 2);
    for (const struct curl_slist *n = t->nodes; n; n = n->next) {
        if (removal(n->data))
            continue;
        w = put(w, n->data, strlen(n->data));
        w = put(w, "\r\n", 2);
    }
    w = put(w, "\r\n", 2);
    if (t->tls) /* one buffer, so the request goes in as few TLS records as it can */
        w = put(w, t->body, t->body_len);
    t->request_len = (size_t)(w - t->request);
    return 0;
}

/* The bytes t's request puts on the connection: its head, and its body apart
 * unless it is in the same buffer (TLS). */
static size_t request_bytes(const struct transfer *t)
{
    return t->request_len + (t->tls ? 0 : t->body_len);
}

/* ---- pools and connections ------------------------------------------------------------- */

static uint64_t hash(const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (; *key; key++)
        h = (h ^ (unsigned char)*key) * 1099511628211ull;
    return h;
}

static struct pool *pool_of(struct plain *w, const char *key)
{
    if (!w->pools && !(w->pools = calloc(BUCKETS, sizeof *w->pools)))
        return NULL;
    struct pool **b = &w->pools[hash(key) % BUCKETS];
    for (struct pool *p = *b; p; p = p->next)
        if (strcmp(p->key, key) == 0)
            return p;
    size_t len = strlen(key) + 1;
    struct pool *p = calloc(1, sizeof *p + len);
    if (!p)
        return NULL;
    memcpy(p->key, key, len);
    p->next = *b;
    *b = p;
    return p;
}

static void unlink_idle(struct conn *c)
{
    for (struct conn **at = &c->pool->idle; *at; at = &(*at)->next_idle)
        if (*at == c) {
            *at = c->next_idle;
            break;
        }
    c->next_idle = NULL;
    c->idle = 0;
}

static void conn_close(struct http_sink *s, struct conn *c)
{
    if (c->idle)
        unlink_idle(c);
    if (c->connecting) {
        curl_multi_remove_handle(s->multi, c->connecting);
        curl_easy_cleanup(c->connecting);
    }
    if (c->tls) { /* libcurl ends the TLS session and closes the socket */
        curl_multi_remove_handle(s->multi, c->tls);
        curl_easy_cleanup(c->tls);
    } else if (c->fd >= 0) {
        close(c->fd);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        s->plain.all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    response_end(&c->answer);
    free(c->buf);
    free(c);
    s->plain.n_conns--;
}

/* Makes room for one more connection by closing an idle one. */
static void evict_idle(struct http_sink *s)
{
    for (struct conn *c = s->plain.all; c; c = c->next)
        if (c->idle) {
            conn_close(s, c);
            return;
        }
}

static struct conn *take_idle(struct http_sink *s, struct pool *p)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    while (p->idle) {
        struct conn *c = p->idle;
        unlink_idle(c);
        if (now.tv_sec - c->idle_since.tv_sec < IDLE_MAX_S)
            return c;
        conn_close(s, c);
    }
    return NULL;
}

/* Ends t on c with error, closing c. */
static void fail(struct http_sink *s, struct conn *c, long status, const char *error)
{
    struct transfer *t = c->t;
    c->t = NULL;
    t->conn = NULL;
    conn_close(s, c);
    complete(s, t, status, error);
}

/* Starts a connection to t's authority for t; MTR_OK or MTR_ERR. */
static int conn_open(struct http_sink *s, struct transfer *t, struct pool *p)
{
    if (s->plain.n_conns >= s->concurrency)
        evict_idle(s);
    struct conn *c = calloc(1, sizeof *c);
    CURL *e = curl_easy_init();
    char url[300];
    if (!c || !e) {
        free(c);
        curl_easy_cleanup(e);
        return MTR_ERR;
    }
    snprintf(url, sizeof url, "%s://%s/", t->tls ? "https" : "http", t->authority);
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, t->tls ? "https" : "http");
    /* ALPN offers http/1.1 only: the requests written on it are HTTP/1.1 */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, s->ca_file);
    if (s->share) /* TLS sessions: a new connection resumes one */
        curl_easy_setopt(e, CURLOPT_SHARE, s->share);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(s->timeout_ms < 10000 ? s->timeout_ms : 10000));
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, guarded_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK) {
        free(c);
        curl_easy_cleanup(e);
        return MTR_ERR;
    }
    *c = (struct conn){.kind = KIND_CONN, .fd = -1, .connecting = e, .pool = p, .t = t};
    t->conn = c;
    c->next = s->plain.all;
    if (c->next)
        c->next->prev = c;
    s->plain.all = c;
    s->plain.n_conns++;
    return MTR_OK;
}

static void lost(struct http_sink *s, struct conn *c, const char *why);

/* Writes what the socket takes of t's request; -1 when that ended t (and c). */
static int conn_write(struct http_sink *s, struct conn *c)
{
    struct transfer *t = c->t;
    size_t total = request_bytes(t);
    while (c->tls && c->sent < total) {
        size_t n = 0;
        CURLcode r = curl_easy_send(c->tls, t->request + c->sent, total - c->sent, &n);
        if (r == CURLE_AGAIN)
            return 0;
        if (r != CURLE_OK) {
            char why[400];
            snprintf(why, sizeof why, "sending to %s failed: %s", t->authority,
                     curl_easy_strerror(r));
            lost(s, c, why);
            return -1;
        }
        c->sent += n;
    }
    while (c->sent < total) {
        struct iovec iov[2];
        int n = 0;
        if (c->sent < t->request_len) {
            iov[n++] = (struct iovec){t->request + c->sent, t->request_len - c->sent};
            iov[n++] = (struct iovec){(void *)t->body, t->body_len};
        } else {
            size_t off = c->sent - t->request_len;
            iov[n++] = (struct iovec){(void *)(t->body + off), t->body_len - off};
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (w < 0) {
            char why[400];
            snprintf(why, sizeof why, "sending to %s failed: %s", t->authority, strerror(errno));
            lost(s, c, why);
            return -1;
        }
        c->sent += (size_t)w;
    }
    return 0;
}

/* Puts t on c and starts writing it. */
static void conn_send(struct http_sink *s, struct conn *c, struct transfer *t)
{
    c->t = t;
    t->conn = c;
    c->sent = c->received = c->len = 0;
    response_begin(&c->answer, t->submitted_at);
    (void)conn_write(s, c);
}

int plain_start(struct http_sink *s, struct transfer *t, const char *path, size_t path_len)
{
    char key[sizeof t->authority + 8];
    snprintf(key, sizeof key, "%s%s", t->tls ? "https://" : "", t->authority);
    struct pool *p = pool_of(&s->plain, key);
    if (!p || build_request(t, path, path_len) != 0)
        return MTR_ERR;
    struct conn *c = take_idle(s, p);
    if (c) {
        conn_send(s, c, t);
        return MTR_OK;
    }
    return conn_open(s, t, p);
}

void plain_connected(struct http_sink *s, struct conn *c, CURLcode rc)
{
    struct transfer *t = c->t;
    curl_socket_t fd = CURL_SOCKET_BAD;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c->connecting, CURLINFO_ACTIVESOCKET, &fd);
    if (t->tls && fd != CURL_SOCKET_BAD) {
        /* the TLS session lives in libcurl: the handle stays (in the multi: removing
         * a connect-only handle closes its connection) and carries every byte */
        c->tls = c->connecting;
        c->connecting = NULL;
        c->fd = fd;
        /* t goes back to the pool when its request ends: libcurl keeps no pointer into it */
        curl_easy_setopt(c->tls, CURLOPT_ERRORBUFFER, NULL);
        conn_send(s, c, t);
        return;
    }
    int mine = fd != CURL_SOCKET_BAD && !t->tls ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    char why[512];
    if (mine < 0) {
        if (t->refused[0])
            snprintf(why, sizeof why, "%s", t->refused);
        else if (rc == CURLE_OPERATION_TIMEDOUT)
            snprintf(why, sizeof why, "timed out after %lld ms", (long long)s->timeout_ms);
        else if (rc != CURLE_OK)
            snprintf(why, sizeof why, "%s",
                     t->curl_error[0] ? t->curl_error : curl_easy_strerror(rc));
        else
            snprintf(why, sizeof why, "cannot keep the connection to %s: %s", t->authority,
                     strerror(errno));
        fail(s, c, 0, why);
        return;
    }
    /* libcurl closes its descriptor when the handle goes; the socket stays with ours */
    curl_multi_remove_handle(s->multi, c->connecting);
    curl_easy_cleanup(c->connecting);
    c->connecting = NULL;
    c->fd = mine;
    fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) | O_NONBLOCK);
    conn_send(s, c, t);
}

/* The answer on c is read (or failed): ends t, keeps c if it may carry another. */
static void answered(struct http_sink *s, struct conn *c)
{
    struct transfer *t = c->t;
    struct response *r = &c->answer;
    int whole = r->state == RESPONSE_DONE;
    char why[400];
    t->retry_after_s = r->retry_after_s;
    t->response = r->body; /* the transfer frees it */
    t->response_len = r->body_len;
    r->body = NULL;
    r->body_len = 0;
    if (!whole) {
        snprintf(why, sizeof why, "%s", r->error);
        fail(s, c, r->status, why);
        return;
    }
    long status = r->status; /* r goes with c if c is closed */
    c->t = NULL;
    t->conn = NULL;
    if (r->keep_alive && c->len == 0 && c->sent == request_bytes(t)) {
        c->served++;
        c->idle = 1;
        clock_gettime(CLOCK_MONOTONIC, &c->idle_since);
        c->next_idle = c->pool->idle;
        c->pool->idle = c;
    } else {
        conn_close(s, c);
    }
    complete(s, t, status, NULL);
}

/* The connection ended or broke before an answer: t goes once more on a new
 * connection if this was a kept one the receiver had closed meanwhile. */
static void lost(struct http_sink *s, struct conn *c, const char *why)
{
    struct transfer *t = c->t;
    if (c->received == 0 && c->served > 0 && !t->fresh) {
        struct pool *p = c->pool;
        c->t = NULL;
        conn_close(s, c);
        t->fresh = 1;
        if (conn_open(s, t, p) == MTR_OK)
            return;
        complete(s, t, 0, why);
        return;
    }
    fail(s, c, c->answer.status, why);
}

static void conn_read(struct http_sink *s, struct conn *c)
{
    for (;;) {
        if (c->len == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : READ_MIN;
            char *b = realloc(c->buf, cap);
            if (!b) {
                fail(s, c, 0, "out of memory reading the answer");
                return;
            }
            c->buf = b;
            c->cap = cap;
        }
        char why[400];
        ssize_t n;
        if (c->tls) { /* until CURLE_AGAIN: TLS may hold bytes the socket no longer shows */
            size_t got = 0;
            CURLcode r = curl_easy_recv(c->tls, c->buf + c->len, c->cap - c->len, &got);
            if (r == CURLE_AGAIN)
                return;
            if (r != CURLE_OK) {
                snprintf(why, sizeof why, "the connection to %s broke: %s", c->t->authority,
                         curl_easy_strerror(r));
                lost(s, c, why);
                return;
            }
            n = (ssize_t)got;
        } else {
            n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                return;
            if (n < 0) {
                snprintf(why, sizeof why, "the connection to %s broke: %s", c->t->authority,
                         strerror(errno));
                lost(s, c, why);
                return;
            }
        }
        if (n == 0) {
            response_eof(&c->answer);
            if (c->answer.state == RESPONSE_DONE) {
                answered(s, c);
            } else {
                snprintf(why, sizeof why, "%s",
                         c->received ? c->answer.error
                                     : "Empty reply from server (the receiver closed the "
                                       "connection without answering)");
                lost(s, c, why);
            }
            return;
        }
        c->len += (size_t)n;
        c->received += (size_t)n;
        size_t used = response_feed(&c->answer, c->buf, c->len);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
        if (c->answer.state == RESPONSE_DONE || c->answer.state == RESPONSE_FAILED) {
            answered(s, c);
            return;
        }
    }
}

/* ---- the wait ------------------------------------------------------------------------------- */

unsigned plain_wait_fds(struct http_sink *s, struct curl_waitfd **fds)
{
    struct plain *w = &s->plain;
    size_t max = (size_t)w->n_conns;
    if (w->waiting_cap < max) {
        struct conn **p = realloc(w->waiting, max * sizeof *p);
        if (p)
            w->waiting = p;
        struct curl_waitfd *f = realloc(w->fds, max * sizeof *f);
        if (f)
            w->fds = f;
        if (!p || !f)
            return 0; /* the timeouts still end what waits */
        w->waiting_cap = max;
    }
    *fds = w->fds;
    unsigned n = 0;
    for (struct conn *c = w->all; c && n < max; c = c->next) {
        if (!c->t || c->fd < 0)
            continue;
        short events = POLLIN;
        if (c->sent < request_bytes(c->t))
            events |= POLLOUT;
        w->waiting[n] = c;
        w->fds[n++] = (struct curl_waitfd){.fd = c->fd, .events = events};
    }
    return n;
}

/* Ends t on c if its time is up, as libcurl does before reading: an answer
 * that comes after the timeout does not count. Returns 1 if it ended. */
static int expired(struct http_sink *s, struct conn *c, const struct timespec *now)
{
    int64_t ms = (now->tv_sec - c->t->started.tv_sec) * 1000 +
                 (now->tv_nsec - c->t->started.tv_nsec) / 1000000;
    if (ms < s->timeout_ms)
        return 0;
    char why[64];
    snprintf(why, sizeof why, "timed out after %lld ms", (long long)s->timeout_ms);
    fail(s, c, 0, why);
    return 1;
}

void plain_progress(struct http_sink *s, const struct curl_waitfd *fds, unsigned n)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    for (unsigned i = 0; i < n; i++) {
        /* each one waited for is still busy with its request: ending another's
         * closes only that connection and idle ones */
        struct conn *c = s->plain.waiting[i];
        if (!fds[i].revents || expired(s, c, &now))
            continue;
        if ((fds[i].revents & POLLOUT) && conn_write(s, c) != 0)
            continue;
        if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
            conn_read(s, c);
    }
    struct conn *next;
    for (struct conn *c = s->plain.all; c; c = next) {
        next = c->next; /* expiring c closes only c */
        if (c->t)
            expired(s, c, &now);
    }
}

void plain_close_all(struct http_sink *s)
{
    while (s->plain.all)
        conn_close(s, s->plain.all);
    for (size_t i = 0; s->plain.pools && i < BUCKETS; i++)
        while (s->plain.pools[i]) {
            struct pool *p = s->plain.pools[i];
            s->plain.pools[i] = p->next;
            free(p);
        }
    free(s->plain.pools);
    s->plain.pools = NULL;
    free(s->plain.waiting);
    s->plain.waiting = NULL;
    free(s->plain.fds);
    s->plain.fds = NULL;
    s->plain.waiting_cap = 0;
}
